"""Portfolio and team metrics (DOMAIN.md §3-4), as SQL reads.

Everything is aggregated by the database so a read costs about the same at 100,000
customers as at ten: no Python loop walks all customers, signals or tasks. Lists that
do come back (scatter points, the risk list, renewals) are capped and ordered in SQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import case, func, or_
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from models.tables import (
    AssessmentRecord,
    Customer,
    SignalRecord,
    TaskRecord,
)

DEFAULT_PERIOD_DAYS = 30
DEFAULT_RENEWAL_DAYS = 90
MAX_POINTS = 2000
MAX_RISKS = 100
PLAYBOOK_HORIZON_DAYS = 90
QUADRANTS = (
    "happy_profitable",
    "unhappy_profitable",
    "happy_unprofitable",
    "unhappy_unprofitable",
    "neutral",
    "unknown",
)
CHURNED = "churned"


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


class Portfolio(BaseModel):
    as_of: datetime
    period_start: datetime
    period_days: int
    renewal_days: int
    active_customers: int
    quadrants: list[QuadrantCount]
    movement: Movement
    renewals_due: int
    overdue_tasks: int
    risks: list[RiskAccount]
    points: list[Point]
    points_total: int  # how many scored accounts match the filters (points are capped)


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _latest_assessment_id(before: datetime | None = None) -> Any:
    """Correlated: the id of the customer's latest assessment (before a time). With the
    customer_id index this is a short seek per customer, not a scan of all assessments."""
    inner = aliased(AssessmentRecord)
    query = select(inner.id).where(inner.customer_id == Customer.id)
    if before is not None:
        query = query.where(col(inner.assessed_at) < before)
    return (
        query.order_by(col(inner.assessed_at).desc(), col(inner.id).desc())
        .limit(1)
        .correlate(Customer)
        .scalar_subquery()
    )


def _active() -> Any:
    return Customer.phase != CHURNED


def quadrant_counts(session: Session) -> list[QuadrantCount]:
    rows = session.exec(
        select(Customer.quadrant, func.count(), func.avg(Customer.level))
        .where(_active())
        .group_by(Customer.quadrant)
    ).all()
    found = {q: (n, avg) for q, n, avg in rows}
    order = list(QUADRANTS) + sorted(set(found) - set(QUADRANTS))
    return [
        QuadrantCount(
            quadrant=q,
            customers=found.get(q, (0, None))[0],
            average_level=None if found.get(q, (0, None))[1] is None else round(found[q][1], 4),
        )
        for q in order
    ]


def _previous(session: Session, before: datetime) -> Any:
    """Each customer's latest assessment before a time, for all customers at once: one
    pass over the assessments in (customer, time) order. At 100,000 customers a lookup
    per customer (_latest_assessment_id) took 0.7-1 s on PostgreSQL (a probe per customer
    and a hash of every assessment), this 0.4-0.6 s; the rest is reading the heap for
    quadrant and level, which an index carrying them would save."""
    a = AssessmentRecord
    newest_first = (col(a.assessed_at).desc(), col(a.id).desc())
    columns = (a.customer_id, a.id, a.quadrant, a.level)
    if session.get_bind().dialect.name == "postgresql":
        return (
            select(*columns)
            .where(col(a.assessed_at) < before)
            .order_by(col(a.customer_id).desc(), *newest_first)
            .ext(distinct_on(a.customer_id))
            .subquery()
        )
    # Elsewhere (SQLite) DISTINCT ON does not exist: the first row of each customer's
    # window, newest first, is the same row.
    rank = func.row_number().over(partition_by=a.customer_id, order_by=newest_first)
    ranked = select(*columns, rank.label("rank")).where(col(a.assessed_at) < before).subquery()
    return (
        select(ranked.c.customer_id, ranked.c.id, ranked.c.quadrant, ranked.c.level)
        .where(ranked.c.rank == 1)
        .subquery()
    )


def movement(session: Session, period_start: datetime) -> Movement:
    """The customer row holds the latest assessment's quadrant and level (the assessment
    activity writes both), so only the earlier side needs a lookup."""
    prev = _previous(session, period_start)
    direction = case(
        (prev.c.id.is_(None), "no_previous"),
        (or_(prev.c.level.is_(None), col(Customer.level).is_(None)), "unscored"),
        (col(Customer.level) > prev.c.level, "toward_success"),
        (col(Customer.level) < prev.c.level, "away"),
        else_="unchanged",
    ).label("direction")
    rows = session.exec(
        select(prev.c.quadrant, Customer.quadrant, direction, func.count())
        .select_from(Customer)
        .outerjoin(prev, prev.c.customer_id == Customer.id)
        .where(_active())
        .group_by(prev.c.quadrant, Customer.quadrant, direction)
    ).all()
    result = Movement()
    moves: dict[tuple[str, str], int] = {}
    for before, after, way, count in rows:
        setattr(result, way, getattr(result, way) + count)
        if before is not None and before != after:
            moves[(before, after)] = moves.get((before, after), 0) + count
    result.transitions = [
        Transition(from_quadrant=a, to_quadrant=b, customers=n)
        for (a, b), n in sorted(moves.items(), key=lambda item: (-item[1], item[0]))
    ]
    return result


def renewals_due(session: Session, now: datetime, days: int) -> int:
    return session.exec(
        select(func.count())
        .select_from(Customer)
        .where(_active(), col(Customer.term_end) >= now)
        .where(col(Customer.term_end) <= now + timedelta(days=days))
    ).one()


def overdue_tasks(session: Session, now: datetime) -> int:
    return session.exec(
        select(func.count())
        .select_from(TaskRecord)
        .where(TaskRecord.status == "open", col(TaskRecord.due_at) < now)
    ).one()


def risk_list(session: Session, limit: int = MAX_RISKS) -> list[RiskAccount]:
    """Neutral but highly profitable: a business risk (000). A neutral customer is marked
    at risk only for this flag, so the indexed columns narrow it before the detail check."""
    latest = aliased(AssessmentRecord)
    rows = session.exec(
        select(Customer, latest)
        .join(latest, latest.id == _latest_assessment_id())
        .where(_active(), col(Customer.at_risk).is_(True), Customer.quadrant == "neutral")
        .order_by(col(latest.company_score).desc(), col(Customer.id))
        .limit(limit)
    ).all()
    risks = []
    for customer, assessment in rows:
        detail = assessment.detail or {}
        if "neutral_high_profit" not in detail.get("risks", []):
            continue
        inputs = detail.get("inputs", {})
        risks.append(
            RiskAccount(
                id=customer.id,
                company=customer.company,
                owner=customer.owner,
                customer_score=assessment.customer_score,
                company_score=assessment.company_score,
                revenue=inputs.get("revenue"),
                margin=inputs.get("margin"),
                assessed_at=assessment.assessed_at,
            )
        )
    return risks


def _filtered(query: Any, filters: PointFilters) -> Any:
    if filters.quadrant:
        query = query.where(Customer.quadrant == filters.quadrant)
    if filters.phase:
        query = query.where(Customer.phase == filters.phase)
    if filters.at_risk is not None:
        query = query.where(Customer.at_risk == filters.at_risk)
    return query


def scatter_points(
    session: Session,
    period_start: datetime,
    filters: PointFilters | None = None,
    limit: int = MAX_POINTS,
) -> tuple[list[Point], int]:
    """The accounts with a scored latest assessment (customer.level is set only then),
    most revenue in the period first, with where each stood at the period's start."""
    filters = filters or PointFilters()
    revenue = (
        select(SignalRecord.customer_id, func.sum(SignalRecord.value).label("revenue"))
        .where(SignalRecord.kind == "revenue", col(SignalRecord.observed_at) > period_start)
        .group_by(SignalRecord.customer_id)
        .subquery()
    )
    scored = _filtered(
        select(Customer.id).where(_active(), col(Customer.level).is_not(None)), filters
    )
    total = session.exec(select(func.count()).select_from(scored.subquery())).one()
    # Cap first, then look up assessments for the few rows that are kept.
    top = (
        _filtered(
            select(Customer.id, func.coalesce(revenue.c.revenue, 0.0).label("revenue"))
            .outerjoin(revenue, revenue.c.customer_id == Customer.id)
            .where(_active(), col(Customer.level).is_not(None)),
            filters,
        )
        .order_by(func.coalesce(revenue.c.revenue, 0.0).desc(), col(Customer.id))
        .limit(limit)
        .subquery()
    )
    now_, then = aliased(AssessmentRecord), aliased(AssessmentRecord)
    rows = session.exec(
        select(
            Customer.id,
            Customer.company,
            Customer.quadrant,
            Customer.phase,
            Customer.at_risk,
            now_.customer_score,
            now_.company_score,
            top.c.revenue,
            then.customer_score,
            then.company_score,
        )
        .join(top, top.c.id == Customer.id)
        .join(now_, now_.id == _latest_assessment_id())
        .outerjoin(then, then.id == _latest_assessment_id(period_start))
        .order_by(top.c.revenue.desc(), col(Customer.id))
    ).all()
    points = [
        Point(
            id=r[0],
            company=r[1],
            quadrant=r[2],
            phase=r[3],
            at_risk=r[4],
            x=r[5],
            y=r[6],
            revenue=r[7] or 0.0,
            previous_x=r[8] if r[9] is not None else None,
            previous_y=r[9] if r[8] is not None else None,
        )
        for r in rows
        if r[5] is not None and r[6] is not None
    ]
    return points, total


def portfolio(
    session: Session,
    now: datetime | None = None,
    period_days: int = DEFAULT_PERIOD_DAYS,
    renewal_days: int = DEFAULT_RENEWAL_DAYS,
    filters: PointFilters | None = None,
) -> Portfolio:
    """The whole book of accounts; filters narrow the scatter points only."""
    now = _now(now)
    start = now - timedelta(days=period_days)
    quadrants = quadrant_counts(session)
    points, total = scatter_points(session, start, filters)
    return Portfolio(
        as_of=now,
        period_start=start,
        period_days=period_days,
        renewal_days=renewal_days,
        active_customers=sum(q.customers for q in quadrants),
        quadrants=quadrants,
        movement=movement(session, start),
        renewals_due=renewals_due(session, now, renewal_days),
        overdue_tasks=overdue_tasks(session, now),
        risks=risk_list(session),
        points=points,
        points_total=total,
    )
