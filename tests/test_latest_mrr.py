"""The customer row keeps its latest MRR (the renewal forecast reads it there), whatever
order MRR signals arrive in, and a resent signal changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, func, select

from db.ingest import record_signals
from models.signals import SignalIn, SignalKind
from models.tables import Customer, SignalRecord

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def mrr(value: float, days_ago: int, client_id: str | None = None) -> SignalIn:
    return SignalIn(
        customer_id="acme",
        kind=SignalKind.mrr,
        value=value,
        observed_at=NOW - timedelta(days=days_ago),
        client_id=client_id,
    )


def kept(engine: Engine) -> tuple[float | None, datetime | None]:
    with Session(engine) as session:
        customer = session.get(Customer, "acme")
        assert customer is not None
        return customer.mrr, customer.mrr_observed_at


def add_acme(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(
            Customer(
                id="acme", company="Acme", contact_name="Ada", email="ada@acme.test",
                plan_name="default", plan_version=1, phase="adopting",
                term_start=NOW - timedelta(days=300), term_end=NOW + timedelta(days=65),
            )
        )  # fmt: skip
        session.commit()


def test_the_latest_observed_mrr_is_kept_whatever_the_order(engine: Engine) -> None:
    add_acme(engine)
    assert kept(engine) == (None, None)

    record_signals(engine, [mrr(900, 30, "jan"), mrr(1200, 2, "may")])
    assert kept(engine) == (1200, NOW - timedelta(days=2))
    # Older, recorded late; a usage figure: neither is the latest MRR.
    record_signals(engine, [mrr(700, 60, "dec")])
    record_signals(engine, [SignalIn(customer_id="acme", kind=SignalKind.usage, value=5,
                                     observed_at=NOW)])  # fmt: skip
    assert kept(engine) == (1200, NOW - timedelta(days=2))
    # Observed at the same time, recorded later: the later record is the latest.
    record_signals(engine, [mrr(1300, 2, "may-fix")])
    assert kept(engine) == (1300, NOW - timedelta(days=2))
    # A resend of one already recorded is skipped, and the row stays.
    assert record_signals(engine, [mrr(1200, 2, "may")]) == 0
    assert kept(engine) == (1300, NOW - timedelta(days=2))


def test_one_batch_keeps_its_latest_mrr_and_each_client_id_once(engine: Engine) -> None:
    add_acme(engine)
    batch = [mrr(1200, 2, "may"), mrr(700, 60, "dec"), mrr(1300, 2, "may-fix"), mrr(900, 30)]
    assert record_signals(engine, batch) == 4
    # Latest by time; of two at the same time, the later in the batch.
    assert kept(engine) == (1300, NOW - timedelta(days=2))
    # The same client id twice in one batch, and once more in the next: stored once.
    assert record_signals(engine, [mrr(500, 1, "jun"), mrr(500, 1, "jun")]) == 1
    assert record_signals(engine, [mrr(500, 1, "jun")]) == 0
    assert kept(engine) == (500, NOW - timedelta(days=1))
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(SignalRecord)).one() == 5
