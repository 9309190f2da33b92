"""The portfolio and the team's metrics, for managers and admins (DOMAIN.md §3-4)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ManagerDep, SessionDep
from db import metrics, team_metrics
from models.portfolio import PointFilters, Portfolio

router = APIRouter(tags=["portfolio"])

PeriodDays = Annotated[int, Query(ge=1, le=730, description="the period, in days up to now")]


@router.get("/portfolio", response_model=Portfolio)
def portfolio(
    session: SessionDep,
    _: ManagerDep,
    period_days: PeriodDays = metrics.DEFAULT_PERIOD_DAYS,
    renewal_days: Annotated[
        int, Query(ge=1, le=730, description="renewals due within this many days")
    ] = metrics.DEFAULT_RENEWAL_DAYS,
    quadrant: Annotated[str | None, Query(description="narrows the points only")] = None,
    phase: Annotated[str | None, Query(description="narrows the points only")] = None,
    at_risk: Annotated[bool | None, Query(description="narrows the points only")] = None,
) -> Portfolio:
    """Customers per quadrant, movement since the period's start, renewals due, overdue
    tasks, the neutral-but-highly-profitable risk list and the scatter's points (most
    revenue first, at most 2,000; `points_total` says how many matched)."""
    filters = PointFilters(quadrant=quadrant, phase=phase, at_risk=at_risk)
    return metrics.portfolio(
        session, period_days=period_days, renewal_days=renewal_days, filters=filters
    )


@router.get("/metrics/team", response_model=team_metrics.TeamReport)
def team(
    session: SessionDep, _: ManagerDep, period_days: PeriodDays = metrics.DEFAULT_PERIOD_DAYS
) -> team_metrics.TeamReport:
    """Retention and churn, NPS, CSAT, first-contact resolution, handle time, tasks closed
    on time and playbook effectiveness over the period, plus the last six months."""
    return team_metrics.team_report(session, period_days=period_days)
