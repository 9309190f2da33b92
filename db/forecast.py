"""The renewal forecast: the revenue up for renewal soon, and how much of it the churn
risk of each account says will stay (sum of MRR x (1 - churn_risk))."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from models.portfolio import RenewalForecast
from models.tables import Customer, SignalRecord

FORECAST_DAYS = 90
REVENUE_MONTH_DAYS = 30


def _latest_mrr() -> Any:
    """Correlated: the customer's latest recorded MRR."""
    inner = aliased(SignalRecord)
    return (
        select(inner.value)
        .where(inner.customer_id == Customer.id, inner.kind == "mrr")
        .order_by(col(inner.observed_at).desc(), col(inner.id).desc())
        .limit(1)
        .correlate(Customer)
        .scalar_subquery()
    )


def _last_month_revenue(now: datetime) -> Any:
    """Revenue received in the last 30 days, per account that had any, as a subquery to
    join. One read of the period's revenue rows (from the covering kind/observed_at index,
    as the scatter's) costs less than a correlated sum per renewing account: ~10,000
    index seeks at 100,000 accounts, and the plan's cost then crossed PostgreSQL's JIT
    threshold, which spent another ~20 ms compiling it."""
    return (
        select(SignalRecord.customer_id, func.sum(SignalRecord.value).label("revenue"))
        .where(
            SignalRecord.kind == "revenue",
            col(SignalRecord.observed_at) > now - timedelta(days=REVENUE_MONTH_DAYS),
            col(SignalRecord.observed_at) <= now,
        )
        .group_by(SignalRecord.customer_id)
        .subquery()
    )


def renewal_forecast(session: Session, now: datetime, days: int = FORECAST_DAYS) -> RenewalForecast:
    """Active accounts whose term ends within `days`: their monthly revenue (the latest
    MRR, else the last 30 days' revenue), and that revenue weighted by the chance each
    stays. An account never scored has no churn risk: its revenue is counted as up for
    renewal and shown apart, never guessed into the forecast."""
    revenue = _last_month_revenue(now)
    mrr = func.coalesce(_latest_mrr(), revenue.c.revenue, 0.0)
    rows = session.exec(
        select(mrr, Customer.churn_risk)
        .outerjoin(revenue, revenue.c.customer_id == Customer.id)
        .where(Customer.phase != "churned")
        .where(col(Customer.term_end) >= now, col(Customer.term_end) <= now + timedelta(days=days))
    ).all()
    up = sum(r[0] for r in rows)
    scored = [(r[0], r[1]) for r in rows if r[1] is not None]
    return RenewalForecast(
        days=days,
        accounts=len(rows),
        revenue_up_for_renewal=round(up, 2),
        revenue_expected_to_stay=round(sum(m * (1 - risk) for m, risk in scored), 2),
        revenue_without_risk=round(sum(r[0] for r in rows if r[1] is None), 2),
    )
