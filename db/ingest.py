"""Signal ingestion: frequent measurements go straight into the records, where the next
assessment reads them. Idempotent by the client's own id, so a resent batch is harmless."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_, update
from sqlmodel import Session, col, select

from db.contacts import ContactError, normalize_email
from db.engine import insert_many, write_once
from db.queries import find_customer, latest_plan_record
from models.contacts import Contact
from models.signals import SignalIn, SignalKind
from models.tables import Customer, GoalRecord, SignalRecord, utcnow


class UnknownGoal(ValueError):
    """A goal signal for a goal the customer's success plan does not have: progress is
    measured on the plan's own goals, so it would only count if a later plan revision
    happened to add that key. Before the kickoff there are no goals yet, and values
    are taken as they come (the kickoff may record their key)."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index  # which signal of the batch


class UnknownContact(ValueError):
    """A survey answer naming someone who is not a contact of the account: it would
    count for nobody (the NPS counts the account's contacts)."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


# How far past the receiver's clock a signal may be observed: a sender's clock a few
# hours fast, or a day's figure stamped with the day's end, is no mistake; a signal
# dated later than this is, and would pin the latest MRR and skew forecasts until then.
CLOCK_SKEW = timedelta(days=1)


class FutureSignal(ValueError):
    """A signal from the outside world observed after it was received (beyond
    CLOCK_SKEW): a measurement cannot be ahead of the clock."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


def record_signals(
    engine: Engine, signals: list[SignalIn], received_at: datetime | None = None
) -> int:
    """Store the signals in one transaction; returns how many were new. Two senders of
    the same client ids at once (a double-clicked survey link): the loser's transaction
    fails on the unique key and is replayed, finding the winner's rows.

    The entry points that take a sender's time (the API, the CLI) pass `received_at`,
    their wall clock, and a signal observed later than it (beyond CLOCK_SKEW) refuses
    the batch with FutureSignal; a simulation records at its own clock and passes none."""
    if received_at is not None:
        check_not_future(signals, received_at)
    return write_once(engine, lambda session: _record(session, signals))


def check_not_future(signals: list[SignalIn], received_at: datetime) -> None:
    """Raise FutureSignal for the first signal observed after `received_at` + CLOCK_SKEW."""
    latest = received_at + CLOCK_SKEW
    for index, signal in enumerate(signals):
        if signal.observed_at > latest:
            raise FutureSignal(
                f"observed_at: {signal.observed_at.isoformat()} is in the future (more than "
                f"{CLOCK_SKEW.days} day past the receiving clock's "
                f"{received_at.isoformat(timespec='seconds')}); a signal records what was "
                "measured, not what is planned",
                index,
            )


def already_answered(engine: Engine, customer_id: str, client_id: str) -> bool:
    """Whether the signal with this client id (a survey's answer) is recorded. Raises
    CustomerNotFound."""
    with Session(engine) as session:
        return _stored(session, find_customer(session, customer_id).id, client_id)


def record_in(session: Session, signals: list[SignalIn]) -> int:
    """`record_signals` within the caller's transaction (an activity's write)."""
    return _record(session, signals)


def _record(session: Session, signals: list[SignalIn]) -> int:
    rows: list[dict[str, Any]] = []
    batch_ids: set[tuple[str, str]] = set()  # (customer, client id) taken in this batch
    goals: dict[str, list[str]] = {}  # by customer id, read once per batch
    latest_mrr: dict[str, SignalIn] = {}  # by customer id: the batch's latest reading
    recorded_at = utcnow()
    for index, signal in enumerate(signals):
        customer = find_customer(session, signal.customer_id)
        if signal.client_id is not None:
            taken = (customer.id, signal.client_id)
            if taken in batch_ids or _stored(session, *taken):
                continue
            batch_ids.add(taken)
        if signal.kind is SignalKind.goal:  # after the duplicate check: a resend is fine
            if customer.id not in goals:
                goals[customer.id] = _goal_keys(session, customer)
            _check_goal(customer, signal, goals[customer.id], index)
        contact = None if signal.contact is None else _contact(session, customer, signal, index)
        rows.append(
            signal.model_dump(exclude={"customer_id", "contact"})
            | {"customer_id": customer.id, "contact_email": contact, "recorded_at": recorded_at}
        )
        if signal.kind is SignalKind.mrr:
            # Of one customer's readings in the batch, the latest by time, then the later
            # in the batch (as it would be by id): keep_latest_mrr's rule.
            before = latest_mrr.get(customer.id)
            if before is None or before.observed_at <= signal.observed_at:
                latest_mrr[customer.id] = signal
    # One statement for the batch, not an ORM object per signal: a month of usage for a
    # few hundred accounts is thousands of rows.
    insert_many(session, SignalRecord, rows)
    for customer_id, mrr in latest_mrr.items():
        keep_latest_mrr(session, customer_id, mrr.value, mrr.observed_at)
    return len(rows)


def _stored(session: Session, customer_id: str, client_id: str) -> bool:
    query = select(SignalRecord.id).where(
        SignalRecord.customer_id == customer_id, SignalRecord.client_id == client_id
    )
    return session.exec(query).first() is not None


def keep_latest_mrr(session: Session, customer_id: str, mrr: float, observed_at: datetime) -> None:
    """Put a newly recorded MRR on the customer's row, unless the row has one observed
    later (signals may arrive out of order). One observed at the same time was recorded
    earlier, so the new one wins, as the latest by time and then by id. Call it for a
    signal stored now, not for one found already there. A conditional UPDATE, not a read
    and a write: two writers at once wait for each other's row and the later time wins.
    Only two writers at once with the same observed time may leave the row on the one
    that commits last rather than on the higher id; both are that moment's MRR."""
    kept = col(Customer.mrr_observed_at)
    session.execute(
        update(Customer)
        .where(col(Customer.id) == customer_id, or_(kept.is_(None), kept <= observed_at))
        .values(mrr=mrr, mrr_observed_at=observed_at)
    )


def _contact(session: Session, customer: Customer, signal: SignalIn, index: int) -> str:
    """The answering contact's address, as the account knows them (any status: an
    answer given before they left is still theirs)."""
    try:
        address = normalize_email(signal.contact or "")
    except ContactError as error:
        raise UnknownContact(f"contact: {error}", index) from None
    found = session.exec(
        select(Contact.id).where(Contact.customer_id == customer.id, Contact.email == address)
    ).first()
    if found is None:
        raise UnknownContact(f"contact: {customer.company} has no contact {address}", index)
    return address


def _goal_keys(session: Session, customer: Customer) -> list[str]:
    plan = latest_plan_record(session, customer.id)
    if plan is None:
        return []
    query = select(GoalRecord.key).where(GoalRecord.plan_id == plan.id).order_by(GoalRecord.id)
    return list(session.exec(query))


def _check_goal(customer: Customer, signal: SignalIn, keys: list[str], index: int) -> None:
    if keys and signal.goal_key not in keys:
        known = ", ".join(keys)
        raise UnknownGoal(
            f"goal_key: {customer.company} has no goal {signal.goal_key!r} (its goals: {known})",
            index,
        )
