"""The outbox's copies: customer mail is a copy per recipient, each a row under its own
key; the lifecycle names the step's email by the step's key, which its copies share."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Engine, Update, bindparam, update
from sqlmodel import Session, col, or_, select

from activities.contracts import EmailReceipt
from models.tables import OutboxEmail, OutboxStatus

# Built once, the keys bound at each call (an expanding parameter): every email looks
# for its stored copies, and building the statement cost more than running it.
_STEP_KEYS = bindparam("keys", expanding=True)
_COPIES = (
    select(OutboxEmail)
    .where(or_(col(OutboxEmail.key).in_(_STEP_KEYS), col(OutboxEmail.request_key).in_(_STEP_KEYS)))
    .order_by(col(OutboxEmail.id))
)


def copies_of(session: Session, keys: Sequence[str]) -> dict[str, list[OutboxEmail]]:
    """The stored copies of each step's email, by the step's key, oldest first (one copy
    under the step's own key when there is one recipient, or from before copies)."""
    found: dict[str, list[OutboxEmail]] = {}
    for row in session.exec(_COPIES, params={"keys": list(keys)}):
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


def record_attempt(engine: Engine, keys: list[str], **values: Any) -> None:
    """A delivery attempt of the copies under these keys, and what it changed (status,
    when delivered, the error). attempts + 1 in SQL, so two attempts racing each other
    are both counted. One statement needs no ORM session around it."""
    with engine.begin() as connection:
        parameters = {f"new_{name}": value for name, value in values.items()}
        connection.execute(_attempt(frozenset(values)), {"keys": keys, **parameters})


@cache
def _attempt(columns: frozenset[str]) -> Update:
    # Built once for each set of columns, the values given as parameters: building the
    # statement for every attempt cost about as much as running it.
    table = OutboxEmail.__table__
    new_values = {name: bindparam(f"new_{name}") for name in columns}
    return (
        update(table)
        .where(table.c.key.in_(bindparam("keys", expanding=True)))
        .values(attempts=table.c.attempts + 1, **new_values)
    )
