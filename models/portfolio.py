"""The portfolio as the API and the dashboard show it (DOMAIN.md §3): counts per
quadrant, movement over the period, the risk list and the scatter's points. Read by
db/metrics.py."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class QuadrantCount(BaseModel):
    quadrant: str
    customers: int
    average_level: float | None


class Transition(BaseModel):
    from_quadrant: str
    to_quadrant: str
    customers: int


class Movement(BaseModel):
    """Each active customer's latest assessment against its latest before the period."""

    toward_success: int = 0
    away: int = 0
    unchanged: int = 0
    unscored: int = 0  # a level is missing on one side (e.g. 'unknown'): no direction
    no_previous: int = 0  # first assessed during the period, or never
    transitions: list[Transition] = []


class RiskAccount(BaseModel):
    id: str
    company: str
    owner: str | None
    customer_score: float | None
    company_score: float | None
    revenue: float | None
    margin: float | None
    assessed_at: datetime


class Point(BaseModel):
    id: str
    company: str
    quadrant: str
    phase: str
    at_risk: bool
    x: float
    y: float
    revenue: float
    previous_x: float | None = None
    previous_y: float | None = None


class PointFilters(BaseModel):
    quadrant: str | None = None
    phase: str | None = None
    at_risk: bool | None = None


class RenewalForecast(BaseModel):
    """Renewals due within `days`: monthly revenue up for renewal, and the part expected
    to stay, sum of MRR x (1 - churn_risk) over the accounts that have a churn risk."""

    days: int
    accounts: int
    revenue_up_for_renewal: float
    revenue_expected_to_stay: float
    revenue_without_risk: float  # accounts never scored: up for renewal, not forecast


class Portfolio(BaseModel):
    as_of: datetime
    period_start: datetime
    period_days: int
    renewal_days: int
    active_customers: int
    quadrants: list[QuadrantCount]
    movement: Movement
    renewals_due: int
    renewal_forecast: RenewalForecast
    overdue_tasks: int
    risks: list[RiskAccount]
    points: list[Point]
    points_total: int  # how many scored accounts match the filters (points are capped)
