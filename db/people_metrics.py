"""The team's metrics per person, as the work is split (seed 003, DOMAIN.md §4).

Reps field customer contact: the tasks they did (and how many on time), how long their
tasks took from opening to done, and the first-contact resolution and handle time of
the support on the accounts they are rep on. Managers own a book: its retention, NPS,
quadrant movement and renewals. Everything is aggregated by the database, grouped by
person; an account counts for its current manager and rep.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import case, distinct, func
from sqlmodel import Session, col, select

from db.metrics import CHURNED
from models.roles import Role
from models.staff import Staff
from models.tables import Customer, SignalRecord, TaskRecord, TimelineEvent


class RepMetrics(BaseModel):
    email: str
    name: str
    accounts: int  # open accounts they are rep on
    open_tasks: int
    tasks_done: int  # in the period, by them
    tasks_on_time: int
    on_time_rate: float | None
    handle_hours: float | None  # mean hours from a task's opening to its completion
    fcr_mean: float | None  # first-contact resolution on their accounts, 0..1
    aht_mean: float | None  # support handle time on their accounts, minutes


class ManagerMetrics(BaseModel):
    email: str
    name: str
    accounts: int  # open accounts in their book
    active_at_start: int
    churned: int
    retention_rate: float | None
    nps: float | None
    nps_responses: int
    improved: int  # accounts whose latest assessment in the period rose in level
    declined: int
    renewals: dict[str, int]  # outcome -> renewal tasks done in the period


class PeopleMetrics(BaseModel):
    reps: list[RepMetrics]
    managers: list[ManagerMetrics]


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def _hours(session: Session, start: Any, end: Any) -> Any:
    """`end - start` in hours: SQLite keeps datetimes as ISO text, PostgreSQL as timestamps."""
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 24
    return func.extract("epoch", end - start) / 3600


def _open_accounts(session: Session, column: Any) -> dict[str, int]:
    rows = session.exec(
        select(column, func.count()).where(Customer.phase != CHURNED).group_by(column)
    ).all()
    return {person: n for person, n in rows if person}


def _people(session: Session, role: Role) -> list[tuple[str, str]]:
    return list(
        session.exec(
            select(Staff.email, Staff.name)
            .where(Staff.role == role.value, col(Staff.active).is_(True))
            .order_by(col(Staff.email))
        ).all()
    )


def rep_metrics(session: Session, start: datetime, end: datetime) -> list[RepMetrics]:
    reps = _people(session, Role.rep)
    emails = [email for email, _ in reps]
    task = TaskRecord
    done = {
        person: (n, on_time or 0, hours)
        for person, n, on_time, hours in session.exec(
            select(
                task.completed_by,
                func.count(),
                func.sum(case((col(task.completed_at) <= col(task.due_at), 1), else_=0)),
                func.avg(_hours(session, col(task.created_at), col(task.completed_at))),
            )
            .where(task.status == "done", col(task.completed_by).in_(emails))
            .where(col(task.completed_at) >= start, col(task.completed_at) < end)
            .group_by(task.completed_by)
        ).all()
    }
    open_tasks = dict(
        session.exec(
            select(task.assignee, func.count())
            .where(task.status == "open", col(task.assignee).in_(emails))
            .group_by(task.assignee)
        ).all()
    )
    kind, value = col(SignalRecord.kind), col(SignalRecord.value)
    support = {
        person: (fcr, aht)
        for person, fcr, aht in session.exec(
            select(
                Customer.rep,
                func.avg(case((kind == "fcr", value), else_=None)),
                func.avg(case((kind == "aht", value), else_=None)),
            )
            .join(SignalRecord, SignalRecord.customer_id == Customer.id)
            .where(col(Customer.rep).in_(emails), kind.in_(["fcr", "aht"]))
            .where(col(SignalRecord.observed_at) >= start, col(SignalRecord.observed_at) < end)
            .group_by(Customer.rep)
        ).all()
    }
    accounts = _open_accounts(session, Customer.rep)
    result = []
    for email, name in reps:
        n, on_time, hours = done.get(email, (0, 0, None))
        fcr, aht = support.get(email, (None, None))
        result.append(
            RepMetrics(
                email=email,
                name=name,
                accounts=accounts.get(email, 0),
                open_tasks=open_tasks.get(email, 0),
                tasks_done=n,
                tasks_on_time=on_time,
                on_time_rate=_ratio(on_time, n),
                handle_hours=_round(hours, 1),
                fcr_mean=_round(fcr, 4),
                aht_mean=_round(aht, 2),
            )
        )
    return result


def _by_owner(session: Session, query: Any) -> dict[str, Any]:
    return {row[0]: row[1:] for row in session.exec(query).all() if row[0]}


def manager_metrics(session: Session, start: datetime, end: datetime) -> list[ManagerMetrics]:
    managers = _people(session, Role.manager)
    owner = col(Customer.owner)
    churn = (
        select(owner, func.count(distinct(Customer.id)))
        .join(TimelineEvent, TimelineEvent.customer_id == Customer.id)
        .where(Customer.phase == CHURNED, TimelineEvent.kind == "churned")
        .where(col(Customer.created_at) < start)
        .group_by(owner)
    )
    existed = _by_owner(
        session,
        select(owner, func.count()).where(col(Customer.created_at) < start).group_by(owner),
    )
    churned_before = _by_owner(session, churn.where(col(TimelineEvent.at) < start))
    churned_in = _by_owner(
        session,
        churn.where(col(TimelineEvent.at) >= start, col(TimelineEvent.at) < end),
    )
    kind, value = col(SignalRecord.kind), col(SignalRecord.value)
    nps = _by_owner(
        session,
        select(
            owner,
            func.count(),
            func.sum(case((value >= 9, 1), else_=0)),
            func.sum(case((value <= 6, 1), else_=0)),
        )
        .join(SignalRecord, SignalRecord.customer_id == Customer.id)
        .where(kind == "nps")
        .where(col(SignalRecord.observed_at) >= start, col(SignalRecord.observed_at) < end)
        .group_by(owner),
    )
    level, previous = col(Customer.level), col(Customer.previous_level)
    movement = _by_owner(
        session,
        select(
            owner,
            func.sum(case((level > previous, 1), else_=0)),
            func.sum(case((level < previous, 1), else_=0)),
        )
        .where(col(Customer.assessed_at) >= start, col(Customer.assessed_at) < end)
        .where(level.is_not(None), previous.is_not(None))
        .group_by(owner),
    )
    renewals: dict[str, dict[str, int]] = {}
    for person, outcome, n in session.exec(
        select(owner, Customer.renewal_outcome, func.count())
        .join(TaskRecord, TaskRecord.customer_id == Customer.id)
        .where(TaskRecord.kind == "renewal", TaskRecord.status == "done")
        .where(col(TaskRecord.completed_at) >= start, col(TaskRecord.completed_at) < end)
        .group_by(owner, Customer.renewal_outcome)
    ).all():
        if person and outcome:
            renewals.setdefault(person, {})[outcome] = n
    accounts = _open_accounts(session, Customer.owner)
    result = []
    for email, name in managers:
        active = existed.get(email, (0,))[0] - churned_before.get(email, (0,))[0]
        churned = churned_in.get(email, (0,))[0]
        churn_rate = _ratio(churned, active)
        answers, promoters, detractors = nps.get(email, (0, 0, 0))
        improved, declined = movement.get(email, (0, 0))
        result.append(
            ManagerMetrics(
                email=email,
                name=name,
                accounts=accounts.get(email, 0),
                active_at_start=active,
                churned=churned,
                retention_rate=None if churn_rate is None else round(1 - churn_rate, 4),
                nps=round(100 * (promoters - detractors) / answers, 1) if answers else None,
                nps_responses=answers,
                improved=improved or 0,
                declined=declined or 0,
                renewals=renewals.get(email, {}),
            )
        )
    return result


def people_metrics(session: Session, start: datetime, end: datetime) -> PeopleMetrics:
    return PeopleMetrics(
        reps=rep_metrics(session, start, end), managers=manager_metrics(session, start, end)
    )
