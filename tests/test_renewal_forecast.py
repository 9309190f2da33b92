"""The portfolio's renewal forecast: MRR up for renewal within 90 days, and the part
expected to stay, sum of MRR x (1 - churn_risk)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from db import metrics
from db.ingest import record_in
from models.signals import SignalIn
from models.tables import AssessmentRecord, Customer

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def customer(cid: str, term_end_days: int, risk: float | None, phase: str = "adopting") -> Customer:
    return Customer(
        id=cid,
        company=f"Company {cid}",
        contact_name="Pat",
        email=f"{cid}@x.test",
        plan_name="default",
        plan_version=1,
        phase=phase,
        term_start=NOW - timedelta(days=300),
        term_end=NOW + timedelta(days=term_end_days),
        churn_risk=risk,
    )


def signal(cid: str, kind: str, value: float, days_ago: int) -> SignalIn:
    return SignalIn(
        customer_id=cid, kind=kind, value=value, observed_at=NOW - timedelta(days=days_ago)
    )


def test_renewal_forecast_by_hand(engine: Engine) -> None:
    with Session(engine) as session:
        session.add_all(
            [
                customer("a", 30, 0.2),  # MRR 1000 (the latest), stays 800
                customer("b", 60, 0.5),  # no MRR: revenue of the last 30 days 600, stays 300
                customer("c", 80, None),  # never scored: MRR 400, not forecast
                customer("d", 120, 0.9),  # renews after 90 days: not counted
                customer("e", 20, 0.1, phase="churned"),  # gone: not counted
            ]
        )
        session.flush()
        record_in(
            session,
            [
                signal("a", "mrr", 900, 60),
                signal("a", "mrr", 1000, 5),
                signal("b", "revenue", 600, 10),
                signal("b", "revenue", 5000, 45),  # older than 30 days
                signal("c", "mrr", 400, 3),
                signal("d", "mrr", 7000, 3),
                signal("e", "mrr", 7000, 3),
            ],
        )
        session.commit()
        forecast = metrics.portfolio(session, now=NOW).renewal_forecast
    assert forecast.days == 90 and forecast.accounts == 3
    assert forecast.revenue_up_for_renewal == pytest.approx(1000 + 600 + 400)
    assert forecast.revenue_expected_to_stay == pytest.approx(1000 * 0.8 + 600 * 0.5)
    assert forecast.revenue_without_risk == pytest.approx(400)


def test_last_month_revenue_is_summed_per_account_within_the_window(engine: Engine) -> None:
    """The revenue fallback is one grouped read joined to the accounts: each account's
    own rows in (now - 30 days, now] are summed, an MRR still wins, and another account's
    revenue never leaks into an account's figure."""
    with Session(engine) as session:
        session.add_all(
            [
                customer("f", 10, 0.5),  # 200 + 300 in the window; 999 in the future
                customer("g", 15, 0.0),  # an MRR of 50 wins over its revenue
                customer("h", 200, 0.1),  # not renewing: its revenue is not counted
            ]
        )
        session.flush()
        record_in(
            session,
            [
                signal("f", "revenue", 200, 1),
                signal("f", "revenue", 300, 29),
                signal("f", "revenue", 999, -2),  # observed after now
                signal("f", "revenue", 4000, 30),  # exactly 30 days ago: outside
                signal("g", "revenue", 7000, 2),
                signal("g", "mrr", 50, 40),
                signal("h", "revenue", 8000, 2),
            ],
        )
        session.commit()
        forecast = metrics.portfolio(session, now=NOW).renewal_forecast
    assert forecast.accounts == 2
    assert forecast.revenue_up_for_renewal == pytest.approx(500 + 50)
    assert forecast.revenue_expected_to_stay == pytest.approx(500 * 0.5 + 50)
    assert forecast.revenue_without_risk == 0


@pytest.mark.parametrize(
    ("horizon_days", "risk", "kept"),
    [
        (90, 0.2, 0.2),
        (30, 0.1, 1 - 0.9**3),  # 0.271: three 30-day spans at the same hazard
        (365, 0.5, 1 - 0.5 ** (90 / 365)),  # 0.157
    ],
)
def test_the_customer_row_keeps_the_risk_over_the_forecasts_90_days(
    horizon_days: int, risk: float, kept: float
) -> None:
    """Whatever the plan's horizon, the forecast weighs each renewal by the chance of
    churning within its own 90 days."""
    row = customer("a", 60, None)
    assessment = AssessmentRecord(
        customer_id="a",
        key="k",
        assessed_at=NOW,
        quadrant="neutral",
        churn_risk=risk,
        detail={"horizon_days": horizon_days},
    )
    assert row.stand(assessment)
    assert row.churn_risk == pytest.approx(kept)
