"""Customer mail kept back because the customer unsubscribed. The email activities ask
here when they compose and again when they deliver: a held email may wait days for its
review, and a delivery may be retried for days, while the customer opts out."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from db.engine import insert_once
from models.tables import Customer, OutboxEmail, OutboxStatus, TimelineEvent


def unsubscribed(session: Session, row: OutboxEmail, customer_mail: bool) -> Customer | None:
    """The customer, when the email is for them and they have opted out. Staff mail
    about them (task notices, escalations) is never kept back: the work still matters."""
    if not customer_mail:
        return None
    customer = session.get(Customer, row.customer_id)
    return customer if customer is not None and customer.unsubscribed_at else None


def suppress(session: Session, row: OutboxEmail, customer: Customer) -> None:
    """Keep the rendered email (what would have gone), marked as not sent, and say so on
    the customer's timeline, once however often a retry gets here."""
    assert customer.unsubscribed_at is not None
    row.status = OutboxStatus.suppressed
    row.last_error = f"not sent: the customer unsubscribed on {customer.unsubscribed_at:%Y-%m-%d}"
    session.add(row)
    insert_once(
        session,
        TimelineEvent,
        {
            "customer_id": row.customer_id,
            "key": f"{row.key}:suppressed",
            "at": datetime.now(UTC),
            "kind": "email_suppressed",
            "message": f"Email not sent, the customer unsubscribed: {row.subject}",
        },
    )
