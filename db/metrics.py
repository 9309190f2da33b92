"""Portfolio and team metrics (DOMAIN.md §3-4), as SQL reads.

Everything is aggregated by the database so a read costs about the same at 100,000
customers as at ten: no Python loop walks all customers, signals or tasks. Lists that
do come back (scatter points, the risk list, renewals) are capped and ordered in SQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, case, func, or_, text, true
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from db.forecast import renewals
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


def _compared(level_then: Any) -> tuple[Any, ...]:
    """What says which way an account moved since an earlier level (`_direction`)."""
    level_now = col(Customer.level)
    return (
        level_now.is_not(None),
        level_then.is_not(None),
        level_now > level_then,
        level_now < level_then,
    )


def _direction(
    known_then: bool | None,
    scored_now: bool,
    scored_then: bool,
    rose: bool | None,
    fell: bool | None,
) -> str:
    """Which way an account moved since the period's start (one of DIRECTIONS)."""
    if not known_then:
        return "no_previous"
    if not (scored_now and scored_then):
        return "unscored"
    return "toward_success" if rose else "away" if fell else "unchanged"


DIRECTIONS = ("toward_success", "away", "unchanged", "unscored", "no_previous")


def _point_conditions(filters: PointFilters) -> list[Any]:
    """What the filters ask of an account for the scatter (its points and their count)."""
    conditions = []
    if filters.quadrant:
        conditions.append(Customer.quadrant == filters.quadrant)
    if filters.phase:
        conditions.append(Customer.phase == filters.phase)
    if filters.at_risk is not None:
        conditions.append(Customer.at_risk == filters.at_risk)
    return conditions


def _moves(points: Any, *groups: Any) -> Any:
    """Active customers by `groups`: how many, their levels now, and how many are the
    scatter's points. The groups are plain columns and booleans, so PostgreSQL expects a
    few hundred and hashes them in memory; grouped by a CASE naming the direction it
    expected one group per row and sorted on disk, and counting each direction in a
    FILTER on that CASE evaluated it five times a row."""
    counted = (
        func.count(),
        func.count(Customer.level),
        func.coalesce(func.sum(Customer.level), 0.0),
        func.count().filter(points),
    )
    return select(*groups, *counted).select_from(Customer).where(_active()).group_by(*groups)


class Standing(NamedTuple):
    quadrants: list[QuadrantCount]
    movement: Movement
    points_total: int  # the scored accounts the point filters match (points are capped)


def standing(
    session: Session, period_start: datetime, filters: PointFilters | None = None
) -> Standing:
    """The active customers per quadrant, and where each stood at the period's start
    against where it stands now, in one pass over the customers; the same pass counts
    the scatter's points (the scored accounts the filters match).

    The customer row carries its latest two assessments (see `Customer.stand`): the one
    in force at the start is the latest if nothing was assessed since, else the one
    before it. Only an account assessed twice within the period needs its history
    searched, a few rows where searching all of them took ~330 ms at 100,000."""
    c = Customer
    points = and_(col(c.level).is_not(None), *_point_conditions(filters or PointFilters()))
    previous_before = col(c.previous_assessed_at) < period_start
    from_row = _moves(
        points,
        c.quadrant,
        col(c.assessed_at) < period_start,
        c.previous_quadrant,
        previous_before,
        *_compared(col(c.previous_level)),
    ).where(or_(col(c.previous_assessed_at).is_(None), previous_before))
    then = aliased(AssessmentRecord)
    from_history = (
        _moves(points, c.quadrant, then.quadrant, then.id.is_not(None), *_compared(then.level))
        .outerjoin(then, then.id == _latest_assessment_id(period_start))
        .where(col(c.previous_assessed_at) >= period_start)
    )
    groups = []
    for now, unmoved, previous, *facts, customers, scored, level_sum, matched in session.exec(
        from_row
    ).all():
        counts = (customers, scored, level_sum, matched)
        if unmoved:  # nothing assessed since the start: the latest was in force then
            scored_now = facts[1]
            groups.append(_Group(now, now, "unchanged" if scored_now else "unscored", *counts))
        else:
            groups.append(_Group(now, previous, _direction(*facts), *counts))
    for now, earlier, *facts, customers, scored, level_sum, matched in session.exec(
        from_history
    ).all():
        groups.append(
            _Group(now, earlier, _direction(*facts), customers, scored, level_sum, matched)
        )
    return Standing(_quadrants(groups), _movement(groups), sum(g.points for g in groups))


class _Group(NamedTuple):
    now: str  # quadrant
    then: str | None  # quadrant at the period's start, if known
    direction: str  # which way they moved since (one of DIRECTIONS)
    customers: int
    scored: int  # customers with a level now
    level_sum: float
    points: int  # of them, those the point filters match


def _quadrants(groups: list[_Group]) -> list[QuadrantCount]:
    customers: dict[str, int] = dict.fromkeys(QUADRANTS, 0)
    scored: dict[str, int] = dict.fromkeys(QUADRANTS, 0)
    level_sum: dict[str, float] = dict.fromkeys(QUADRANTS, 0.0)
    for g in groups:
        customers[g.now] = customers.get(g.now, 0) + g.customers
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
        setattr(result, g.direction, getattr(result, g.direction) + g.customers)
        if g.direction != "no_previous" and g.then is not None and g.then != g.now:
            moves[(g.then, g.now)] = moves.get((g.then, g.now), 0) + g.customers
    result.transitions = [
        Transition(from_quadrant=a, to_quadrant=b, customers=n)
        for (a, b), n in sorted(moves.items(), key=lambda item: (-item[1], item[0]))
    ]
    return result


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


def scatter_points(
    session: Session,
    period_start: datetime,
    filters: PointFilters | None = None,
    limit: int = MAX_POINTS,
) -> list[Point]:
    """The accounts with a scored latest assessment (customer.level is set only then),
    most revenue in the period first (then the others, each at its latest MRR), with
    where each stood at the period's start.
    (`standing` counts them all.)"""
    earning = (
        select(SignalRecord.customer_id, func.sum(SignalRecord.value).label("revenue"))
        .where(SignalRecord.kind == "revenue", col(SignalRecord.observed_at) > period_start)
        .group_by(SignalRecord.customer_id)
        .having(func.sum(SignalRecord.value) > 0)
    )
    earned = earning.subquery()
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

    def scored(revenue: Any) -> Any:
        return select(
            c.id,
            c.company,
            c.quadrant,
            c.phase,
            c.at_risk,
            c.customer_score,
            c.company_score,
            revenue,
            at_start(c.customer_score, c.previous_customer_score, then.customer_score),
            at_start(c.company_score, c.previous_company_score, then.company_score),
        ).where(_active(), col(c.level).is_not(None), *_point_conditions(filters or PointFilters()))

    # The accounts with revenue in the period, most first; then, if there is room left
    # (a small book), the others by id. Most scored accounts earned nothing in a month:
    # only those that earned are sorted. On PostgreSQL each is then looked up by its key
    # in the ranking's order until the page is full, where joining them all read every
    # customer row (about 20 ms of CPU of 40 at 100,000 accounts); its LIMIT 1 keeps the
    # planner from turning the lookup back into that join. SQLite has no LATERAL: it joins.
    on_earned = earned.c.customer_id == c.id
    if session.get_bind().dialect.name == "postgresql":
        ranked = earning.order_by(text("revenue DESC"), SignalRecord.customer_id).subquery()
        account = scored(ranked.c.revenue).where(c.id == ranked.c.customer_id).limit(1).lateral()
        first = (
            select(*account.c)
            .select_from(ranked)
            .join(account, true())
            .order_by(ranked.c.revenue.desc(), ranked.c.customer_id)
        )
    else:
        first = (
            scored(earned.c.revenue)
            .join(earned, on_earned)
            .order_by(earned.c.revenue.desc(), col(c.id))
        )
    rows = session.exec(first.limit(limit)).all()
    if len(rows) < limit:
        # Without revenue signals in the period, a month of the latest MRR stands for it.
        rows += session.exec(
            scored(func.coalesce(c.mrr, 0.0))
            .outerjoin(earned, on_earned)
            .where(earned.c.customer_id.is_(None))
            .order_by(col(c.id))
            .limit(limit - len(rows))
        ).all()
    return [
        Point(
            id=r[0],
            company=r[1],
            quadrant=r[2],
            phase=r[3],
            at_risk=r[4],
            x=r[5],
            y=r[6],
            revenue=r[7],
            previous_x=r[8] if r[9] is not None else None,
            previous_y=r[9] if r[8] is not None else None,
        )
        for r in rows
        if r[5] is not None and r[6] is not None
    ]


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
    book = standing(session, start, filters)
    renewing = renewals(session, now, renewal_days)
    return Portfolio(
        as_of=now,
        period_start=start,
        period_days=period_days,
        renewal_days=renewal_days,
        active_customers=sum(q.customers for q in book.quadrants),
        quadrants=book.quadrants,
        movement=book.movement,
        renewals_due=renewing.due,
        renewal_forecast=renewing.forecast,
        overdue_tasks=overdue_tasks(session, now),
        risks=risk_list(session),
        points=scatter_points(session, start, filters),
        points_total=book.points_total,
    )
