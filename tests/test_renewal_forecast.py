"""The portfolio's renewal forecast: MRR up for renewal within 90 days, and the part
expected to stay, sum of MRR x (1 - churn_risk)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from activities.assessment import AssessmentActivities
from activities.contracts import AssessmentRequest
from db import metrics
from db.ingest import record_in
from models.plan import ScoringSettings
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
                customer("b", 60, 0.5),  # no MRR: revenue 600 a month, stays 300
                customer("c", 80, None),  # never scored: MRR 400, not forecast
                customer("d", 120, 0.9),  # renews after 90 days: not counted
                customer("e", 20, 0.1, phase="churned"),  # gone: not counted
            ]
        )
        session.flush()
        b = session.get(Customer, "b")
        assert b is not None
        b.monthly_revenue = 600  # its latest assessment's (the next test shows how)
        record_in(
            session,
            [
                signal("a", "mrr", 900, 60),
                signal("a", "mrr", 1000, 5),
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


def test_without_mrr_an_account_renews_at_its_assessed_revenue_per_month(
    engine: Engine,
) -> None:
    """An account with no MRR on record is forecast at its latest assessment's revenue
    per month: a quarterly invoice of 3,000 is 1,000 a month, however recent, and a
    reading sent twice counts once. An MRR still wins."""
    with Session(engine) as session:
        session.add_all([customer("q", 10, None), customer("g", 15, None)])
        session.flush()
        quarter = SignalIn(
            customer_id="q",
            kind="revenue",
            value=3000,
            period_start=NOW - timedelta(days=95),
            observed_at=NOW - timedelta(days=5),
        )
        record_in(
            session,
            [
                quarter,
                quarter,  # sent twice
                signal("g", "revenue", 7000, 2),
                signal("g", "mrr", 50, 40),
            ],
        )
        session.commit()
    for cid in ("q", "g"):
        request = AssessmentRequest(customer_id=cid, key="k", as_of=NOW, scoring=ScoringSettings())
        AssessmentActivities(engine).assess_account(request)
    with Session(engine) as session:
        q = session.get(Customer, "q")
        assert q is not None and q.monthly_revenue == pytest.approx(1000)  # 3000 / 90 * 30
        forecast = metrics.portfolio(session, now=NOW).renewal_forecast
    assert forecast.accounts == 2
    assert forecast.revenue_up_for_renewal == pytest.approx(1000 + 50)


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
