"""Email opt-outs: a contact's own (set by the link in the copies they get, or by staff
for them), and the whole account's (the links of mail from before per-contact copies,
or of an account without contacts; staff acting on an "unsubscribe" reply), cleared if
they opt back in.

A preference, not lifecycle state: it is written here, beside the lifecycle, like
signal ingestion, and the email activity reads it when it composes and delivers, so a
running lifecycle needs no news and its history no new commands. Each change is one
conditional UPDATE, so a double-clicked link (or a mail program's one-click POST racing
the person's own click) records the change, its audit entry and its timeline line once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from db.engine import session_scope
from db.queries import find_customer
from models.contacts import Contact
from models.tables import AuditEntry, Customer, TimelineEvent


class ContactNotFound(LookupError):
    pass


def set_unsubscribed(
    engine: Engine, customer_id: str, unsubscribed: bool, via: str, actor: str | None = None
) -> bool:
    """Opt the customer out of (or back into) automated email; True when this call
    changed it, False when it was so already. The actor is a person on the team, or
    None for the customer's own contact (recorded by address). Raises CustomerNotFound."""
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        customer = find_customer(session, customer_id)
        actor = actor or f"customer:{customer.email}"
        current = col(Customer.unsubscribed_at)
        changed = session.exec(
            update(Customer)
            .where(col(Customer.id) == customer.id)
            .where(current.is_(None) if unsubscribed else current.is_not(None))
            .values(
                unsubscribed_at=now if unsubscribed else None,
                unsubscribed_by=actor if unsubscribed else None,
            )
        ).rowcount
        if not changed:
            return False
        _record(session, customer.id, customer.email, unsubscribed, via, actor, now, contact=False)
    return True


def set_contact_unsubscribed(
    engine: Engine,
    customer_id: str,
    email: str,
    unsubscribed: bool,
    via: str,
    actor: str | None = None,
) -> bool:
    """One contact's opt-out (their own link, or staff for them): the account's other
    contacts still get its email. True when this call changed it. Raises
    CustomerNotFound, or ContactNotFound for an address that is not their contact."""
    with session_scope(engine) as session:
        customer = find_customer(session, customer_id)
        return contact_opt_out(session, customer.id, email, unsubscribed, via, actor)


def contact_opt_out(
    session: Session,
    customer_id: str,
    email: str,
    unsubscribed: bool,
    via: str,
    actor: str | None = None,
) -> bool:
    """`set_contact_unsubscribed` in the caller's transaction (a contact change by staff)."""
    address = email.strip().lower()
    actor = actor or f"contact:{address}"
    now = datetime.now(UTC)
    current = col(Contact.unsubscribed_at)
    changed = session.exec(  # conditional, as for the account: a double click records once
        update(Contact)
        .where(col(Contact.customer_id) == customer_id, col(Contact.email) == address)
        .where(current.is_(None) if unsubscribed else current.is_not(None))
        .values(
            unsubscribed_at=now if unsubscribed else None,
            unsubscribed_by=actor if unsubscribed else None,
        )
    ).rowcount
    if not changed:
        found = session.exec(
            select(Contact.id).where(Contact.customer_id == customer_id, Contact.email == address)
        ).first()
        if found is None:
            raise ContactNotFound(f"no contact {address!r} at {customer_id}")
        return False
    _record(session, customer_id, address, unsubscribed, via, actor, now, contact=True)
    return True


def _record(
    session: Session,
    customer_id: str,
    email: str,
    unsubscribed: bool,
    via: str,
    actor: str,
    now: datetime,
    contact: bool,
) -> None:
    """The change's audit entry and timeline line, for one contact or for the whole
    account. The conditional update before it lets one call only this far, so these are
    plain inserts."""
    action = "email.unsubscribed" if unsubscribed else "email.resubscribed"
    change = "unsubscribed from" if unsubscribed else "subscribed to"
    text = f"{change} automated email{'' if unsubscribed else ' again'} ({via}, {actor})"
    session.add(
        AuditEntry(
            at=now,
            actor=actor,
            action=action,
            subject=f"{customer_id}:{email}" if contact else customer_id,
            detail={"email": email, "via": via},
        )
    )
    session.add(
        TimelineEvent(
            customer_id=customer_id,
            key=f"{action}:{email}:{now.isoformat()}" if contact else f"{action}:{now.isoformat()}",
            at=now,
            kind=action.replace(".", "_"),
            message=f"{email} {text}" if contact else text[0].upper() + text[1:],
        )
    )
