"""Portfolio and team metrics (DOMAIN.md §3-4), as SQL reads.

Everything is aggregated by the database so a read costs about the same at 100,000
customers as at ten: no Python loop walks all customers, signals or tasks. Lists that
do come back (scatter points, the risk list, renewals) are capped and ordered in SQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import case, func, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from db.forecast import renewal_forecast
from models.portfolio import (
    Movement,
    Point,
    PointFilters,
    Portfolio,
    QuadrantCount,
    RiskAccount,
    Transition,
)
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


def _compared(level_then: Any) -> Any:
    """Which way the account moved since a known earlier assessment."""
    level_now = col(Customer.level)
    return case(
        (or_(level_then.is_(None), level_now.is_(None)), "unscored"),
        (level_now > level_then, "toward_success"),
        (level_now < level_then, "away"),
        else_="unchanged",
    )


DIRECTIONS = ("toward_success", "away", "unchanged", "unscored", "no_previous")


def _moves(direction: Any, *groups: Any) -> Any:
    """Active customers by `groups`: how many moved each way, and their levels now.
    The groups are plain columns (and a boolean) so PostgreSQL expects a few dozen and
    hashes them in memory; grouped by CASE expressions it expected one per row and
    sorted on disk."""
    ways = (func.count().filter(direction == way) for way in DIRECTIONS)
    levels = (func.count(Customer.level), func.coalesce(func.sum(Customer.level), 0.0))
    return select(*groups, *ways, *levels).select_from(Customer).where(_active()).group_by(*groups)


def standing(session: Session, period_start: datetime) -> tuple[list[QuadrantCount], Movement]:
    """The active customers per quadrant, and where each stood at the period's start
    against where it stands now, in one pass over the customers.

    The customer row carries its latest two assessments (see `Customer.stand`): the one
    in force at the start is the latest if nothing was assessed since, else the one
    before it. Only an account assessed twice within the period needs its history
    searched, a few rows where searching all of them took ~330 ms at 100,000."""
    c = Customer
    latest_before = col(c.assessed_at) < period_start
    previous_before = col(c.previous_assessed_at) < period_start
    from_row = _moves(
        case(
            (latest_before, case((col(c.level).is_(None), "unscored"), else_="unchanged")),
            (previous_before, _compared(col(c.previous_level))),
            else_="no_previous",
        ),
        c.quadrant,
        c.previous_quadrant,
        latest_before,
    ).where(or_(col(c.previous_assessed_at).is_(None), previous_before))
    then = aliased(AssessmentRecord)
    from_history = (
        _moves(
            case((then.id.is_(None), "no_previous"), else_=_compared(col(then.level))),
            c.quadrant,
            then.quadrant,
        )
        .outerjoin(then, then.id == _latest_assessment_id(period_start))
        .where(col(c.previous_assessed_at) >= period_start)
    )
    groups = [
        _Group(now, now if unmoved else then, *_split(counts))
        for now, then, unmoved, *counts in session.exec(from_row).all()
    ]
    groups += [
        _Group(now, then, *_split(counts))
        for now, then, *counts in session.exec(from_history).all()
    ]
    return _quadrants(groups), _movement(groups)


class _Group(NamedTuple):
    now: str  # quadrant
    then: str | None  # quadrant at the period's start, if known
    ways: list[int]  # customers per direction, in DIRECTIONS' order
    scored: int  # customers with a level now
    level_sum: float


def _split(counts: list[Any]) -> tuple[list[int], int, float]:
    *ways, scored, level_sum = counts
    return ways, scored, level_sum


def _quadrants(groups: list[_Group]) -> list[QuadrantCount]:
    customers: dict[str, int] = dict.fromkeys(QUADRANTS, 0)
    scored: dict[str, int] = dict.fromkeys(QUADRANTS, 0)
    level_sum: dict[str, float] = dict.fromkeys(QUADRANTS, 0.0)
    for g in groups:
        customers[g.now] = customers.get(g.now, 0) + sum(g.ways)
        scored[g.now] = scored.get(g.now, 0) + g.scored
        level_sum[g.now] = level_sum.get(g.now, 0.0) + g.level_sum
    order = list(QUADRANTS) + sorted(set(customers) - set(QUADRANTS))
    return [
        QuadrantCount(
            quadrant=q,
            customers=customers[q],
            average_level=round(level_sum[q] / scored[q], 4) if scored[q] else None,
        )
        for q in order
    ]


def _movement(groups: list[_Group]) -> Movement:
    result = Movement()
    moves: dict[tuple[str, str], int] = {}
    for g in groups:
        for way, count in zip(DIRECTIONS, g.ways, strict=True):
            setattr(result, way, getattr(result, way) + count)
        moved = sum(g.ways) - g.ways[-1]  # all but no_previous have a 'before'
        if g.then is not None and g.then != g.now and moved:
            moves[(g.then, g.now)] = moves.get((g.then, g.now), 0) + moved
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
    ranked = (col(Customer.company_score).desc().nulls_last(), col(Customer.id))
    top = (
        select(Customer.id)
        .where(_active(), col(Customer.at_risk).is_(True), Customer.quadrant == "neutral")
        .order_by(*ranked)
        .limit(limit)
        .subquery()
    )
    # The scores are on the customer row; the latest assessment's detail (why, and the
    # revenue and margin it saw) is read for the listed accounts only.
    latest = aliased(AssessmentRecord)
    rows = session.exec(
        select(Customer, latest)
        .join(top, top.c.id == Customer.id)
        .join(latest, latest.id == _latest_assessment_id())
        .order_by(*ranked)
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
    c = Customer
    then = aliased(AssessmentRecord)
    in_force = _latest_assessment_id(period_start)

    def at_start(latest: Any, previous: Any, searched: Any) -> Any:
        # As in `movement`: the row's latest or previous score, else (assessed twice in
        # the period, a few accounts) the history's, read only for those rows.
        lookup = select(searched).where(then.id == in_force).scalar_subquery()
        latest_before = col(c.assessed_at) < period_start
        previous_before = col(c.previous_assessed_at) < period_start
        return case((latest_before, latest), (previous_before, previous), else_=lookup)

    money = func.coalesce(revenue.c.revenue, 0.0)
    rows = session.exec(
        _filtered(
            select(
                c.id,
                c.company,
                c.quadrant,
                c.phase,
                c.at_risk,
                c.customer_score,
                c.company_score,
                money,
                at_start(c.customer_score, c.previous_customer_score, then.customer_score),
                at_start(c.company_score, c.previous_company_score, then.company_score),
            )
            .outerjoin(revenue, revenue.c.customer_id == c.id)
            .where(_active(), col(c.level).is_not(None)),
            filters,
        )
        .order_by(money.desc(), col(c.id))
        .limit(limit)
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
    quadrants, moved = standing(session, start)
    points, total = scatter_points(session, start, filters)
    return Portfolio(
        as_of=now,
        period_start=start,
        period_days=period_days,
        renewal_days=renewal_days,
        active_customers=sum(q.customers for q in quadrants),
        quadrants=quadrants,
        movement=moved,
        renewals_due=renewals_due(session, now, renewal_days),
        renewal_forecast=renewal_forecast(session, now),
        overdue_tasks=overdue_tasks(session, now),
        risks=risk_list(session),
        points=points,
        points_total=total,
    )
