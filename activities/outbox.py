"""The outbox's copies: customer mail is a copy per recipient, each a row under its own
key; the lifecycle names the step's email by the step's key, which its copies share."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, or_, select

from activities.contracts import EmailReceipt
from models.tables import OutboxEmail, OutboxStatus


def copies_of(session: Session, keys: Sequence[str]) -> dict[str, list[OutboxEmail]]:
    """The stored copies of each step's email, by the step's key, oldest first (one copy
    under the step's own key when there is one recipient, or from before copies)."""
    rows = session.exec(
        select(OutboxEmail)
        .where(or_(col(OutboxEmail.key).in_(keys), col(OutboxEmail.request_key).in_(keys)))
        .order_by(col(OutboxEmail.id))
    )
    found: dict[str, list[OutboxEmail]] = {}
    for row in rows:
        found.setdefault(row.request_key or row.key, []).append(row)
    return found


def receipt(key: str, rows: list[OutboxEmail]) -> EmailReceipt:
    # A suppressed copy counts as delivered: there is nothing left to deliver, and the
    # lifecycle then opens no review task for it either.
    done = all(r.status in (OutboxStatus.sent, OutboxStatus.suppressed) for r in rows)
    return EmailReceipt(
        key=key,
        subject=rows[0].subject,
        to_address=", ".join(r.to_address for r in rows),
        already_delivered=done,
    )
