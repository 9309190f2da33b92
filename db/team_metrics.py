"""Team metrics (DOMAIN.md §4, seed 003) and upcoming renewals, as SQL reads.

Like `db.metrics` (the portfolio), everything is aggregated by the database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Interval, and_, case, distinct, exists, func, literal, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from db.metrics import CHURNED, DEFAULT_PERIOD_DAYS, PLAYBOOK_HORIZON_DAYS, _active, _now
from db.people_metrics import PeopleMetrics, people_metrics
from models.tables import (
    AssessmentRecord,
    Customer,
    GoalRecord,
    SignalRecord,
    SuccessPlanRecord,
    TaskRecord,
    TimelineEvent,
)


class PlaybookEffect(BaseModel):
    """Of the accounts whose playbook task was done in the period, how many rose in level
    (or reached happy_profitable) in the assessments of the 90 days after completion."""

    playbook: str
    accounts: int
    improved: int
    rate: float | None


class TeamMetrics(BaseModel):
    period_start: datetime
    period_end: datetime
    active_at_start: int
    churned: int
    churn_rate: float | None
    retention_rate: float | None
    nps: float | None  # % promoters (9-10) minus % detractors (0-6), -100..100
    nps_responses: int
    csat_mean: float | None
    csat_satisfied_rate: float | None  # share of answers 4 or 5
    csat_responses: int
    fcr_mean: float | None
    aht_mean: float | None  # minutes
    tickets_closed: float
    tasks_closed: int
    tasks_on_time: int
    on_time_rate: float | None
    playbooks: list[PlaybookEffect] = []


class TeamReport(BaseModel):
    current: TeamMetrics
    monthly: list[TeamMetrics]  # the last six calendar months, oldest first
    people: PeopleMetrics  # the current period, per rep and per manager


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _plus_days(session: Session, column: Any, days: int) -> Any:
    """`column + days` in SQL: SQLite keeps datetimes as ISO text, PostgreSQL as timestamps."""
    if session.get_bind().dialect.name == "sqlite":
        return func.datetime(column, f"+{days} days")
    # Typed as an interval: untyped, the offset would take the column's datetime type.
    return column + literal(timedelta(days=days), Interval())


def _churn(session: Session, start: datetime, end: datetime) -> tuple[int, int]:
    """(customers active at the start, of whom churned in the period). Churn is dated by
    the lifecycle's own 'churned' timeline event, not by a row's wall-clock update."""
    existed = session.exec(
        select(func.count()).select_from(Customer).where(col(Customer.created_at) < start)
    ).one()

    def churned(lower: datetime | None, upper: datetime) -> int:
        query = (
            select(func.count(distinct(Customer.id)))
            .join(TimelineEvent, TimelineEvent.customer_id == Customer.id)
            .where(Customer.phase == CHURNED, TimelineEvent.kind == "churned")
            .where(col(Customer.created_at) < start, col(TimelineEvent.at) < upper)
        )
        if lower is not None:
            query = query.where(col(TimelineEvent.at) >= lower)
        return session.exec(query).one()

    active = existed - churned(None, start)
    return active, churned(start, end)


def _signals(session: Session, start: datetime, end: datetime) -> dict[str, Any]:
    kind, value = col(SignalRecord.kind), col(SignalRecord.value)

    def count(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    def mean(name: str) -> Any:
        return func.avg(case((kind == name, value), else_=None))

    row = session.exec(
        select(
            count(kind == "nps"),
            count(and_(kind == "nps", value >= 9)),
            count(and_(kind == "nps", value <= 6)),
            count(kind == "csat"),
            count(and_(kind == "csat", value >= 4)),
            mean("csat"),
            mean("fcr"),
            mean("aht"),
            func.sum(case((kind == "tickets", value), else_=0.0)),
        ).where(
            kind.in_(["nps", "csat", "fcr", "aht", "tickets"]),
            col(SignalRecord.observed_at) >= start,
            col(SignalRecord.observed_at) < end,
        )
    ).one()
    nps_n, promoters, detractors, csat_n, satisfied, csat, fcr, aht, tickets = (
        v or 0 if i in (0, 1, 2, 3, 4, 8) else v for i, v in enumerate(row)
    )
    nps = None if not nps_n else round(100 * (promoters - detractors) / nps_n, 1)
    return {
        "nps": nps,
        "nps_responses": nps_n,
        "csat_mean": None if csat is None else round(csat, 3),
        "csat_satisfied_rate": _ratio(satisfied, csat_n),
        "csat_responses": csat_n,
        "fcr_mean": None if fcr is None else round(fcr, 4),
        "aht_mean": None if aht is None else round(aht, 2),
        "tickets_closed": float(tickets),
    }


def _tasks(session: Session, start: datetime, end: datetime) -> tuple[int, int]:
    closed, on_time = session.exec(
        select(
            func.count(),
            func.sum(case((col(TaskRecord.completed_at) <= col(TaskRecord.due_at), 1), else_=0)),
        ).where(
            TaskRecord.status == "done",
            col(TaskRecord.completed_at) >= start,
            col(TaskRecord.completed_at) < end,
        )
    ).one()
    return closed, on_time or 0


def playbook_effectiveness(
    session: Session, start: datetime, end: datetime
) -> list[PlaybookEffect]:
    task = TaskRecord
    before, after = aliased(AssessmentRecord), aliased(AssessmentRecord)
    baseline = (
        select(before.level)
        .where(before.customer_id == task.customer_id)
        .where(col(before.assessed_at) <= col(task.completed_at))
        .order_by(col(before.assessed_at).desc(), col(before.id).desc())
        .limit(1)
        .correlate(task)
        .scalar_subquery()
    )
    improved = exists(
        select(after.id)
        .where(after.customer_id == task.customer_id)
        .where(col(after.assessed_at) > col(task.completed_at))
        .where(
            col(after.assessed_at)
            <= _plus_days(session, col(task.completed_at), PLAYBOOK_HORIZON_DAYS)
        )
        .where(or_(after.quadrant == "happy_profitable", col(after.level) > baseline))
        .correlate(task)
    )
    rows = session.exec(
        select(
            task.playbook,
            func.count(distinct(task.customer_id)),
            func.count(distinct(case((improved, task.customer_id), else_=None))),
        )
        .where(col(task.playbook).is_not(None), task.status == "done")
        .where(col(task.completed_at) >= start, col(task.completed_at) < end)
        .group_by(task.playbook)
        .order_by(task.playbook)
    ).all()
    return [
        PlaybookEffect(playbook=p, accounts=n, improved=k, rate=_ratio(k, n)) for p, n, k in rows
    ]


def team_metrics(
    session: Session, start: datetime, end: datetime, playbooks: bool = True
) -> TeamMetrics:
    active, churned = _churn(session, start, end)
    closed, on_time = _tasks(session, start, end)
    churn_rate = _ratio(churned, active)
    return TeamMetrics(
        period_start=start,
        period_end=end,
        active_at_start=active,
        churned=churned,
        churn_rate=churn_rate,
        retention_rate=None if churn_rate is None else round(1 - churn_rate, 4),
        tasks_closed=closed,
        tasks_on_time=on_time,
        on_time_rate=_ratio(on_time, closed),
        playbooks=playbook_effectiveness(session, start, end) if playbooks else [],
        **_signals(session, start, end),
    )


def month_starts(now: datetime, months: int = 6) -> list[datetime]:
    """The first instants (UTC) of the last `months` calendar months, this one last."""
    year, month = now.astimezone(UTC).year, now.astimezone(UTC).month
    starts = []
    for _ in range(months):
        starts.append(datetime(year, month, 1, tzinfo=UTC))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return list(reversed(starts))


def team_report(
    session: Session, now: datetime | None = None, period_days: int = DEFAULT_PERIOD_DAYS
) -> TeamReport:
    now = _now(now)
    starts = month_starts(now)
    ends = [*starts[1:], now]
    start = now - timedelta(days=period_days)
    return TeamReport(
        current=team_metrics(session, start, now),
        people=people_metrics(session, start, now),
        monthly=[
            team_metrics(session, s, e, playbooks=False) for s, e in zip(starts, ends, strict=True)
        ],
    )


# -- renewals ------------------------------------------------------------------------------


class RenewalRow(BaseModel):
    id: str
    company: str
    owner: str | None
    phase: str
    term_end: datetime
    quadrant: str
    level: float | None
    at_risk: bool
    plan_progress: float | None  # mean share of the way to target over measured goals
    goals: int


def upcoming_renewals(
    session: Session, now: datetime | None = None, days: int = 180, limit: int = 500
) -> list[RenewalRow]:
    now = _now(now)
    customers = session.exec(
        select(Customer)
        .where(_active(), col(Customer.term_end) >= now)
        .where(col(Customer.term_end) <= now + timedelta(days=days))
        .order_by(col(Customer.term_end), col(Customer.id))
        .limit(limit)
    ).all()
    ids = [c.id for c in customers]
    plan = SuccessPlanRecord
    latest = (
        select(plan.customer_id, func.max(plan.version).label("version"))
        .where(plan.source == "manager", col(plan.customer_id).in_(ids))
        .group_by(plan.customer_id)
        .subquery()
    )
    goal = GoalRecord
    current = (
        select(SignalRecord.value)
        .where(SignalRecord.customer_id == goal.customer_id, SignalRecord.kind == "goal")
        .where(SignalRecord.goal_key == goal.key)
        .order_by(col(SignalRecord.observed_at).desc(), col(SignalRecord.id).desc())
        .limit(1)
        .correlate(goal)
        .scalar_subquery()
    )
    share = (current - col(goal.baseline)) / (col(goal.target) - col(goal.baseline))
    progress = {
        cid: (avg, n)
        for cid, avg, n in session.exec(
            select(goal.customer_id, func.avg(share), func.count())
            .join(plan, plan.id == goal.plan_id)
            .join(
                latest,
                and_(latest.c.customer_id == plan.customer_id, latest.c.version == plan.version),
            )
            .group_by(goal.customer_id)
        ).all()
    }
    return [
        RenewalRow(
            plan_progress=None
            if progress.get(c.id, (None, 0))[0] is None
            else round(progress[c.id][0], 4),
            goals=progress.get(c.id, (None, 0))[1],
            **c.model_dump(include=set(RenewalRow.model_fields)),
        )
        for c in customers
    ]
