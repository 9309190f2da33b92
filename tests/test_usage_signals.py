"""Usage per metric over a period: what a signal may say, and that it is stored whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, select

from db.ingest import record_signals
from models.signals import Observation, SignalIn, SignalKind, observation
from models.tables import Customer, SignalRecord

END = datetime(2026, 3, 1, tzinfo=UTC)


def usage(**fields: object) -> SignalIn:
    values: dict[str, object] = {
        "customer_id": "acme",
        "kind": "usage",
        "value": 280,
        "observed_at": END,
    }
    return SignalIn.model_validate(values | fields)


def test_a_usage_count_over_a_period_is_a_daily_rate() -> None:
    february = usage(metric="reports_shared", period_start=datetime(2026, 2, 1, tzinfo=UTC))
    assert february.metric_name == "reports_shared"
    assert february.period_days == pytest.approx(28)


def test_usage_without_a_metric_is_the_metric_usage_and_a_level() -> None:
    single = usage()
    assert single.metric_name == "usage"
    assert single.period_days is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"metric": "Reports Shared"}, "metric: 'Reports Shared' is not a metric name"),
        ({"kind": "nps", "value": 9, "metric": "x"}, "metric only goes with kind 'usage'"),
        ({"period_start": END}, "period_start must be before observed_at"),
        ({"period_start": END + timedelta(days=1)}, "period_start must be before observed_at"),
        (
            {"kind": "nps", "value": 9, "period_start": END - timedelta(days=30)},
            "period_start only goes with an amount over a period",
        ),
        (
            {"period_start": datetime(2026, 2, 1)},
            "period_start and observed_at must both carry a time zone",
        ),
        ({"kind": "seats", "value": -1}, "seats must be at least 0"),
    ],
)
def test_bad_usage_signals_are_refused_naming_the_field(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        usage(**fields)


def test_metric_and_period_are_stored_and_read_back(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(
            Customer(
                id="acme",
                company="Acme",
                contact_name="Ada",
                email="ada@acme.test",
                plan_name="default",
                plan_version=1,
                phase="adopting",
                term_start=END - timedelta(days=100),
                term_end=END + timedelta(days=265),
            )
        )
        session.commit()
    start = datetime(2026, 2, 1, tzinfo=UTC)
    signals = [
        usage(metric="reports_shared", period_start=start, client_id="feb"),
        usage(value=12, client_id="single"),
    ]
    assert record_signals(engine, signals) == 2
    with Session(engine) as session:
        rows = session.exec(select(SignalRecord).order_by(SignalRecord.id)).all()
        read = [observation(r) for r in rows]
    assert read == [
        Observation(
            kind=SignalKind.usage,
            value=280,
            observed_at=END,
            metric="reports_shared",
            period_start=start,
        ),
        Observation(kind=SignalKind.usage, value=12, observed_at=END),
    ]
