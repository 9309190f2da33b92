"""Customer mail kept back because its recipient opted out: the whole account, or the
contact the copy is for (the account's other contacts still get theirs). The email
activities ask here when they compose and again when they deliver: a held email may
wait days for its review, and a delivery may be retried for days, while someone opts
out."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, select

from db.engine import insert_once
from models.contacts import Contact
from models.tables import Customer, OutboxEmail, OutboxStatus, TimelineEvent


def opted_out(
    session: Session,
    row: OutboxEmail,
    customer_mail: bool,
    customer: Customer | None = None,
    contact_opted_out: bool | None = None,
) -> str | None:
    """Why the email must not go (who unsubscribed, and when), or None. Staff mail
    about a customer (task notices, escalations) is never kept back: the work still
    matters. `customer` and `contact_opted_out` are given when the caller has read them
    already (compose, in its own transaction)."""
    if not customer_mail:
        return None
    customer = customer or session.get(Customer, row.customer_id)
    if customer is not None and customer.unsubscribed_at:
        return f"the customer unsubscribed on {customer.unsubscribed_at:%Y-%m-%d}"
    if row.contact_email is None or contact_opted_out is False:
        return None
    since = session.exec(
        select(Contact.unsubscribed_at).where(
            Contact.customer_id == row.customer_id, Contact.email == row.contact_email
        )
    ).first()
    return f"{row.contact_email} unsubscribed on {since:%Y-%m-%d}" if since else None


def suppress(session: Session, row: OutboxEmail, reason: str) -> None:
    """Keep the rendered email (what would have gone), marked as not sent, and say so on
    the customer's timeline, once however often a retry gets here. A row read from the
    outbox is written with the session; a new one is the caller's to insert after."""
    row.status = OutboxStatus.suppressed
    row.last_error = f"not sent: {reason}"
    insert_once(
        session,
        TimelineEvent,
        {
            "customer_id": row.customer_id,
            "key": f"{row.key}:suppressed",
            "at": datetime.now(UTC),
            "kind": "email_suppressed",
            "message": f"Email not sent, {reason}: {row.subject}",
        },
    )
