"""An account's contacts: add, change, mark as left and remove them, and the upsert that
sign-up and Segment's `identify` use. Every change by a person is in the audit log, and a
contact who leaves is on the account's timeline.

A change that takes an active champion away (removed, marked as left, bouncing) comes
back as `ContactChanged.champion_left`, for the caller to tell the lifecycle, which opens
the plan's `champion_left` playbook task.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from sqlalchemy import Engine, bindparam
from sqlmodel import Session, col, select

from db.engine import session_scope
from db.queries import contacts_of, find_customer
from db.unsubscribe import ContactNotFound, contact_opt_out
from models.contacts import (
    TEMPLATE_ROLES,
    Contact,
    ContactChange,
    ContactPublic,
    ContactRole,
    ContactStatus,
    NewContact,
)
from models.customer import EmailAddress
from models.tables import AuditEntry, TimelineEvent, utcnow


class ContactError(ValueError):
    """A contact change refused: which field, and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class ContactChanged(BaseModel):
    """A contact after a change, and whether the change took a champion away."""

    contact: ContactPublic
    champion_left: bool = False
    lifecycle: str | None = Field(
        default=None, description="when a champion left: what became of telling the lifecycle"
    )


def normalize_email(email: str) -> str:
    """Contacts are known at their account by their address, compared without case."""
    try:
        return TypeAdapter(EmailAddress).validate_python(email.strip()).lower()
    except ValidationError as error:
        message = error.errors()[0]["msg"].removeprefix("Value error, ")
        raise ContactError("email", message) from None


def ordered_roles(roles: Iterable[str]) -> list[str]:
    """Roles without repeats, in ContactRole's order (champion first)."""
    wanted = {ContactRole(r) for r in roles}
    return [r.value for r in ContactRole if r in wanted]


def is_active_champion(row: Contact) -> bool:
    return row.status == ContactStatus.active.value and ContactRole.champion.value in row.roles


def _find(session: Session, customer_id: str, email: str) -> Contact | None:
    return session.exec(
        select(Contact).where(Contact.customer_id == customer_id, Contact.email == email)
    ).first()


def _existing(session: Session, customer_id: str, email: str) -> Contact:
    row = _find(session, customer_id, normalize_email(email))
    if row is None:
        raise ContactNotFound(f"no contact {email.strip().lower()!r} at {customer_id}")
    return row


def public(row: Contact) -> ContactPublic:
    return ContactPublic.model_validate(row)


def list_contacts(session: Session, ref: str) -> list[ContactPublic]:
    return contacts_of(session, find_customer(session, ref).id)


def _audit(session: Session, actor: str, action: str, row: Contact, **detail: object) -> None:
    subject = f"{row.customer_id}:{row.email}"
    session.add(AuditEntry(actor=actor, action=action, subject=subject, detail=detail))


def _left_on_timeline(session: Session, row: Contact, how: str, at: datetime) -> None:
    """A contact gone from the account, once per contact and way of leaving."""
    key = f"contact_{how}:{row.email}:{at.isoformat()}"
    roles = ", ".join(r.replace("_", " ") for r in row.roles) or "contact"
    session.add(
        TimelineEvent(
            customer_id=row.customer_id,
            key=key,
            at=at,
            kind="champion_left" if ContactRole.champion.value in row.roles else "contact_left",
            message=f"{row.name} ({roles}) {how.replace('_', ' ')}",
        )
    )


def add_contact(
    engine: Engine, ref: str, new: NewContact, actor: str, source: str = "api"
) -> ContactPublic:
    if not new.name.strip():
        raise ContactError("name", "must not be blank")
    address = normalize_email(new.email)
    with session_scope(engine) as session:
        customer = find_customer(session, ref)
        if _find(session, customer.id, address) is not None:
            raise ContactError("email", f"{address} is already a contact of {customer.id}")
        row = Contact(
            customer_id=customer.id,
            name=new.name.strip(),
            email=address,
            roles=ordered_roles(new.roles),
            source=source,
        )
        session.add(row)
        session.flush()
        _audit(session, actor, "contact.added", row, name=row.name, roles=row.roles)
        return public(row)


def update_contact(
    engine: Engine, ref: str, email: str, change: ContactChange, actor: str
) -> ContactChanged:
    """Change a contact's name, roles or status. Marking them `left` or `bounced` keeps
    them in the account's history; making them `active` again brings them back."""
    with session_scope(engine) as session:
        customer = find_customer(session, ref)
        row = _existing(session, customer.id, email)
        was_champion = is_active_champion(row)
        if change.unsubscribed is not None:
            # The same record as their own link makes (audit entry, timeline line).
            contact_opt_out(session, customer.id, row.email, change.unsubscribed, "staff", actor)
            session.refresh(row)
        if change.name is not None:
            if not change.name.strip():
                raise ContactError("name", "must not be blank")
            row.name = change.name.strip()
        if change.roles is not None:
            row.roles = ordered_roles(change.roles)
        now = utcnow()
        if change.status is not None and change.status.value != row.status:
            row.status = change.status.value
            row.left_at = None if change.status is ContactStatus.active else now
            if change.status is not ContactStatus.active:
                _left_on_timeline(session, row, change.status.value, now)
        row.updated_at = now
        session.add(row)
        _audit(session, actor, "contact.changed", row, **change.changes())
        session.flush()
        left = was_champion and not is_active_champion(row)
        return ContactChanged(contact=public(row), champion_left=left)


def remove_contact(engine: Engine, ref: str, email: str, actor: str) -> ContactChanged:
    """Take a contact off the account (added by mistake, or gone without a trace). The
    audit log and the timeline keep who they were."""
    with session_scope(engine) as session:
        customer = find_customer(session, ref)
        row = _existing(session, customer.id, email)
        shown = public(row)
        was_champion = is_active_champion(row)
        if was_champion:
            _left_on_timeline(session, row, "was_removed", utcnow())
        _audit(session, actor, "contact.removed", row, name=row.name, roles=row.roles)
        session.delete(row)
        return ContactChanged(contact=shown, champion_left=was_champion)


def contact_row(
    customer_id: str, name: str, email: str, roles: Iterable[str], source: str
) -> Contact:
    """A new account's first contact: nothing to look up."""
    return Contact(
        customer_id=customer_id,
        name=name.strip() or email,
        email=email.strip().lower(),
        roles=ordered_roles(roles),
        source=source,
    )


def upsert_contact(
    session: Session,
    customer_id: str,
    name: str,
    email: str,
    roles: Iterable[str],
    source: str,
) -> Contact | None:
    """The contact as sign-up or the product's own events know them: added when new; an
    existing one keeps what the team set and gains any new roles. None when the address
    is not one (events carry what the product had)."""
    try:
        address = normalize_email(email)
    except ContactError:
        return None
    row = _find(session, customer_id, address)
    if row is None:
        row = Contact(
            customer_id=customer_id,
            name=name.strip() or address,
            email=address,
            roles=ordered_roles(roles),
            source=source,
        )
    else:
        added = ordered_roles([*row.roles, *roles])
        if added == row.roles:
            return row
        row.roles, row.updated_at = added, utcnow()
    session.add(row)
    return row


def champions_of(session: Session, customer_id: str) -> list[ContactPublic]:
    rows = session.exec(
        select(Contact).where(
            Contact.customer_id == customer_id,
            Contact.status == ContactStatus.active.value,
        )
    ).all()
    return [public(r) for r in rows if ContactRole.champion.value in r.roles]


def from_identify(session: Session, calls: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """Contacts from Segment calls attributed to an account, as (customer id, the
    person's traits: an `identify`'s, or a `group`'s `context.traits`): a user with an
    `email` trait is a contact, named by `name` (or first and last
    name), in the roles a `role` or `roles` trait names (a user otherwise)."""
    for customer_id, traits in calls:
        email = traits.get("email")
        if not isinstance(email, str):
            continue
        name = traits.get("name") or " ".join(
            str(traits[k]) for k in ("firstName", "lastName") if traits.get(k)
        )
        named = traits.get("roles") or traits.get("role") or ContactRole.user.value
        named = [named] if isinstance(named, str) else named
        roles = [r for r in (str(n).lower().replace(" ", "_") for n in named) if r in _ROLES]
        upsert_contact(session, customer_id, str(name or ""), email, roles or ["user"], "segment")


_ROLES = {r.value for r in ContactRole}


class Reachable(NamedTuple):
    """An active contact, as customer mail needs them."""

    email: str
    name: str
    roles: list[str]
    unsubscribed: bool  # their own opt-out


class Addressee(NamedTuple):
    """One copy of a customer email: to a contact (their own unsubscribe and survey
    links, greeted by name), or to the account's own address when no contact is in the
    template's roles."""

    address: str
    name: str | None  # None: the account's contact name
    contact: bool
    opted_out: bool


# Built once, its values bound at each call: every customer email reads it, and building
# it cost twice as long as running it.
_ACTIVE_CONTACTS = (
    select(Contact.email, Contact.name, Contact.roles, Contact.unsubscribed_at)
    .where(
        Contact.customer_id == bindparam("customer_id"),
        Contact.status == ContactStatus.active.value,
    )
    .order_by(col(Contact.id))
)


def active_contacts(session: Session, customer_id: str) -> list[Reachable]:
    """The account's active contacts, oldest first."""
    rows = session.exec(_ACTIVE_CONTACTS, params={"customer_id": customer_id})
    return [Reachable(e, n, r, u is not None) for e, n, r, u in rows]


def addressees(contacts: list[Reachable], template: str, primary: str) -> list[Addressee]:
    """Whom a customer email goes to, one copy each: the active contacts in the roles
    the template names (models.contacts.TEMPLATE_ROLES; every active contact for the
    others), those who opted out included (their copy is kept back, not sent); the
    account's primary address when nobody is in those roles."""
    wanted = TEMPLATE_ROLES.get(template)
    chosen = [
        Addressee(c.email, c.name, True, c.unsubscribed)
        for c in contacts
        if wanted is None or wanted & set(c.roles)
    ]
    return chosen or [Addressee(primary, None, False, False)]


def addresses_for(session: Session, customer_id: str, template: str, primary: str) -> str:
    chosen = addressees(active_contacts(session, customer_id), template, primary)
    return ", ".join(a.address for a in chosen)


class BounceReport(BaseModel):
    """What reported bounces changed: the contacts now marked bounced (a champion among
    them is told to their lifecycle), and the addresses that changed nothing."""

    bounced: list[ContactChanged]
    unchanged: list[str] = Field(description="contacts already not active")
    unknown: list[str] = Field(description="no account has a contact at this address")


def mark_bounced(
    engine: Engine, emails: Iterable[str], actor: str, customer_id: str | None = None
) -> BounceReport:
    """Mark the contacts at these addresses bounced, at every account that has them (or
    at `customer_id` only), as a bounce report says: kept in the account's history, on
    its timeline, audited. A contact already bounced or gone is left as they are, so a
    report sent twice changes nothing the second time."""
    report = BounceReport(bounced=[], unchanged=[], unknown=[])
    with session_scope(engine) as session:
        for address in dict.fromkeys(normalize_email(e) for e in emails):
            query = select(Contact).where(Contact.email == address).order_by(col(Contact.id))
            if customer_id is not None:
                query = query.where(Contact.customer_id == customer_id)
            rows = list(session.exec(query))
            if not rows:
                report.unknown.append(address)
            for row in rows:
                if row.status != ContactStatus.active.value:
                    report.unchanged.append(f"{row.customer_id}:{address}")
                    continue
                was_champion = is_active_champion(row)
                now = utcnow()
                row.status, row.left_at, row.updated_at = ContactStatus.bounced.value, now, now
                session.add(row)
                _left_on_timeline(session, row, ContactStatus.bounced.value, now)
                _audit(session, actor, "contact.bounced", row)
                session.flush()
                changed = ContactChanged(contact=public(row), champion_left=was_champion)
                report.bounced.append(changed)
    return report
