"""Signal ingestion: frequent measurements go straight into the records, where the next
assessment reads them. Idempotent by the client's own id, so a resent batch is harmless."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from db.engine import session_scope
from db.queries import find_customer
from models.signals import SignalIn
from models.tables import SignalRecord


def record_signals(engine: Engine, signals: list[SignalIn]) -> int:
    """Store the signals in one transaction; returns how many were new. Two senders of
    the same client ids at once (a double-clicked survey link): the loser's transaction
    fails on the unique key and is replayed, finding the winner's rows."""
    try:
        return _record(engine, signals)
    except IntegrityError:
        return _record(engine, signals)


def _record(engine: Engine, signals: list[SignalIn]) -> int:
    added = 0
    with session_scope(engine) as session:
        for signal in signals:
            customer = find_customer(session, signal.customer_id)
            if signal.client_id is not None:
                exists = session.exec(
                    select(SignalRecord.id).where(
                        SignalRecord.customer_id == customer.id,
                        SignalRecord.client_id == signal.client_id,
                    )
                ).first()
                if exists is not None:
                    continue
            data = signal.model_dump(exclude={"customer_id"})
            session.add(SignalRecord(customer_id=customer.id, **data))
            added += 1
    return added
