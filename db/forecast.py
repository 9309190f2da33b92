"""Renewals: how many accounts renew soon, the revenue up for renewal, and how much of it
the churn risk of each account says will stay (sum of MRR x (1 - churn_risk))."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import func
from sqlmodel import Session, col, select

from models.portfolio import RenewalForecast
from models.tables import FORECAST_RISK_DAYS, Customer

FORECAST_DAYS = FORECAST_RISK_DAYS


class Renewals(NamedTuple):
    due: int  # active accounts whose term ends within the portfolio's renewal days
    forecast: RenewalForecast


def renewals(
    session: Session, now: datetime, due_days: int, forecast_days: int = FORECAST_DAYS
) -> Renewals:
    """Active accounts whose term ends within `due_days`, counted; and those within
    `forecast_days` forecast: their monthly revenue (the latest MRR, else the latest
    assessment's revenue per month, both kept on the customer row), and that revenue
    weighted by the chance each stays. An account never scored has no churn risk: its
    revenue is counted as up for renewal and shown apart, never guessed into the
    forecast. One read of the accounts renewing within the longer of the two, summed by
    the database."""
    mrr = func.coalesce(Customer.mrr, Customer.monthly_revenue, 0.0)
    ends, risk = col(Customer.term_end), col(Customer.churn_risk)
    forecast = ends <= now + timedelta(days=forecast_days)
    due, accounts, up, stays, unscored = session.exec(
        select(
            func.count().filter(ends <= now + timedelta(days=due_days)),
            func.count().filter(forecast),
            func.sum(mrr).filter(forecast),
            func.sum(mrr * (1 - risk)).filter(forecast, risk.is_not(None)),
            func.sum(mrr).filter(forecast, risk.is_(None)),
        )
        .select_from(Customer)
        .where(Customer.phase != "churned", ends >= now)
        .where(ends <= now + timedelta(days=max(due_days, forecast_days)))
    ).one()
    return Renewals(
        due=due,
        forecast=RenewalForecast(
            days=forecast_days,
            accounts=accounts,
            revenue_up_for_renewal=round(up or 0.0, 2),
            revenue_expected_to_stay=round(stays or 0.0, 2),
            revenue_without_risk=round(unscored or 0.0, 2),
        ),
    )
