"""Reads shared by the CLI, the API and the dashboard: each returns read models
(models/public.py), never rows bound to an open session. `find_customer` and the
`latest_*` helpers serve the write paths, which work on the records themselves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import BaseModel, field_validator
from sqlalchemy import bindparam, func, or_
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from models.contacts import Contact, ContactPublic, ContactRole, ContactStatus
from models.public import (
    AssessmentPublic,
    CustomerDetailPublic,
    CustomerPublic,
    EmailPublic,
    GoalPublic,
    SuccessPlanPublic,
    TaskPublic,
    TimelineEventPublic,
)
from models.success_plan import Goal, SuccessPlan
from models.tables import (
    AssessmentRecord,
    Customer,
    GoalRecord,
    OutboxEmail,
    SignalRecord,
    SuccessPlanRecord,
    TaskRecord,
    TimelineEvent,
)


class CustomerNotFound(LookupError):
    pass


class AmbiguousCustomer(CustomerNotFound):
    """A company name that several customers share: the caller must use an id."""


def find_customer(session: Session, ref: str) -> Customer:
    """By id, external id or (unambiguous) company name, case-insensitively."""
    row = session.get(Customer, ref)
    if row is not None:
        return row
    matches = session.exec(
        select(Customer).where(
            or_(Customer.external_id == ref, func.lower(Customer.company) == ref.lower())
        )
    ).all()
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        ids = ", ".join(m.id for m in matches)
        raise AmbiguousCustomer(f"{ref!r} matches several customers: {ids}; use the id")
    raise CustomerNotFound(f"no customer {ref!r}")


def latest_plan_record(
    session: Session, customer_id: str, source: str = "manager"
) -> SuccessPlanRecord | None:
    """The latest version the manager recorded (goals included), or with
    source="customer" the latest the customer wrote on their own page."""
    return session.exec(
        select(SuccessPlanRecord)
        .where(SuccessPlanRecord.customer_id == customer_id, SuccessPlanRecord.source == source)
        .order_by(col(SuccessPlanRecord.version).desc())
    ).first()


class RecordedPlan(NamedTuple):
    """The latest success plan the manager recorded, with its goals in order, and when
    the customer's first plan (of any source) was recorded: goal progress is paced from
    then."""

    record: SuccessPlanRecord
    goals: list[GoalRecord]
    started: datetime

    def success_plan(self) -> SuccessPlan:
        record = self.record
        return SuccessPlan(
            intended_use=record.intended_use,
            success_definition=record.success_definition,
            objectives=record.objectives,
            constraints=record.constraints,
            goals=[
                Goal.model_validate(g.model_dump(exclude={"id", "plan_id", "customer_id"}))
                for g in self.goals
            ],
        )


def _latest_recorded_plan() -> Select[Any]:
    """The latest manager plan's row with each of its goals (one row per goal, or one
    with no goal), and the first plan's date on every row."""
    customer_id = bindparam("customer_id")
    plans = select(SuccessPlanRecord).where(SuccessPlanRecord.customer_id == customer_id)
    latest = (
        plans.with_only_columns(col(SuccessPlanRecord.id))
        .where(SuccessPlanRecord.source == "manager")
        .order_by(col(SuccessPlanRecord.version).desc())
        .limit(1)
        .scalar_subquery()
        .correlate(None)  # each its own read of the plans, whatever the outer query joins
    )
    first = (
        plans.with_only_columns(col(SuccessPlanRecord.created_at))
        .order_by(col(SuccessPlanRecord.version))
        .limit(1)
        .scalar_subquery()
        .correlate(None)
    )
    return (
        select(SuccessPlanRecord, GoalRecord, first)
        .outerjoin(GoalRecord, col(GoalRecord.plan_id) == SuccessPlanRecord.id)
        .where(SuccessPlanRecord.id == latest)
        .order_by(col(GoalRecord.id))
    )


# The reads every check-in and every email makes are built once, their values bound at
# each call: building a statement (and its cache key) cost two to three times as long
# as running it.
_LATEST_RECORDED_PLAN = _latest_recorded_plan()
_GOAL_VALUES = (
    select(SignalRecord.goal_key, SignalRecord.value)
    .where(SignalRecord.customer_id == bindparam("customer_id"), SignalRecord.kind == "goal")
    .order_by(col(SignalRecord.observed_at))
)


def latest_recorded_plan(session: Session, customer_id: str) -> RecordedPlan | None:
    """One statement: every check-in and every email about the account reads it."""
    rows = session.exec(_LATEST_RECORDED_PLAN, params={"customer_id": customer_id}).all()
    if not rows:
        return None
    record, _, started = rows[0]
    return RecordedPlan(record, [goal for _, goal, _ in rows if goal is not None], started)


def latest_success_plan(session: Session, customer_id: str) -> SuccessPlan | None:
    recorded = latest_recorded_plan(session, customer_id)
    return None if recorded is None else recorded.success_plan()


def goals_with_progress(session: Session, plan: RecordedPlan | None) -> list[GoalPublic]:
    """The plan's goals with the latest measured value and the share of the way there."""
    if plan is None:
        return []
    values = latest_goal_values(session, plan.record.customer_id)
    goals = []
    for goal in plan.goals:
        current = values.get(goal.key)
        span = goal.target - goal.baseline
        progress = None if current is None or span == 0 else (current - goal.baseline) / span
        goals.append(
            GoalPublic.model_validate(goal).model_copy(
                update={"current": current, "progress": progress}
            )
        )
    return goals


def latest_goal_values(session: Session, customer_id: str) -> dict[str, float]:
    """Each goal's latest measured value (two columns: every email reads them)."""
    rows = session.exec(_GOAL_VALUES, params={"customer_id": customer_id}).all()
    return {key: value for key, value in rows if key}


class Standing(NamedTuple):
    """An assessment's headline figures: what an email shows of it."""

    quadrant: str
    level: float | None
    customer_score: float | None
    company_score: float | None
    trend: float | None
    assessed_at: datetime

    @classmethod
    def of(cls, record: AssessmentRecord) -> Standing:
        return cls(*(getattr(record, name) for name in cls._fields))

    @classmethod
    def held_by(cls, customer: Customer) -> Standing | None:
        """The latest assessment's, as the customer's row keeps it (Customer.stand)."""
        if customer.assessed_at is None:
            return None
        return cls(*(getattr(customer, name) for name in cls._fields))


class PlanAndStanding(NamedTuple):
    """A customer's latest success plan and standing as a transaction already read or
    wrote them (a check-in's): its emails show them without reading them again."""

    plan: RecordedPlan | None
    standing: Standing | None


# The latest first: the same order wherever "the latest assessment" is read.
LATEST_ASSESSMENT_FIRST = (
    col(AssessmentRecord.assessed_at).desc(),
    col(AssessmentRecord.id).desc(),
)


def latest_assessment(session: Session, customer_id: str) -> AssessmentRecord | None:
    return session.exec(
        select(AssessmentRecord)
        .where(AssessmentRecord.customer_id == customer_id)
        .order_by(*LATEST_ASSESSMENT_FIRST)
    ).first()


def list_tasks(
    session: Session,
    role: str | None = None,
    customer_id: str | None = None,
    assignee: str | None = None,
    status: str | None = "open",
    limit: int = 200,
) -> list[TaskPublic]:
    query = select(TaskRecord).order_by(col(TaskRecord.due_at), col(TaskRecord.id)).limit(limit)
    if status:
        query = query.where(TaskRecord.status == status)
    if role:
        query = query.where(TaskRecord.owner_role == role)
    if customer_id:
        query = query.where(TaskRecord.customer_id == customer_id)
    if assignee is not None:
        query = query.where(TaskRecord.assignee == assignee)
    return [TaskPublic.model_validate(t) for t in session.exec(query)]


def list_customers(
    session: Session, limit: int = 200, rep_view: str | None = None
) -> list[CustomerPublic]:
    """By company; for a rep (`rep_view`, their email) only the accounts they are rep on."""
    query = select(Customer).order_by(col(Customer.company)).limit(limit)
    if rep_view is not None:
        query = query.where(Customer.rep == rep_view)
    return [CustomerPublic.model_validate(c) for c in session.exec(query)]


def customer_overview(
    session: Session, ref: str, timeline_limit: int = 50, rep_view: str | None = None
) -> CustomerDetailPublic:
    """The account by id, external id or company name, with its success plan (the
    manager's and the customer's own words), goals, open tasks, assessment history,
    recent emails and timeline. A rep (`rep_view`, their email) sees only the accounts
    they are rep on (any other is not found, as if it did not exist) and, of the open
    tasks, their own."""
    customer = find_customer(session, ref)
    if rep_view is not None and customer.rep != rep_view:
        raise CustomerNotFound(f"no customer {ref!r}")
    plan = latest_recorded_plan(session, customer.id)
    customer_words = latest_plan_record(session, customer.id, source="customer")
    emails = session.exec(
        select(OutboxEmail)
        .where(OutboxEmail.customer_id == customer.id)
        .order_by(col(OutboxEmail.created_at).desc())
        .limit(20)
    )
    timeline = session.exec(
        select(TimelineEvent)
        .where(TimelineEvent.customer_id == customer.id)
        .order_by(col(TimelineEvent.at).desc(), col(TimelineEvent.id).desc())
        .limit(timeline_limit)
    )
    return CustomerDetailPublic(
        customer=CustomerPublic.model_validate(customer),
        success_plan=SuccessPlanPublic.model_validate(plan.record) if plan else None,
        customer_words=SuccessPlanPublic.model_validate(customer_words) if customer_words else None,
        goals=goals_with_progress(session, plan),
        open_tasks=list_tasks(session, customer_id=customer.id, assignee=rep_view),
        assessments=assessment_history(session, customer.id),
        emails=[EmailPublic.model_validate(e) for e in emails],
        timeline=[TimelineEventPublic.model_validate(e) for e in timeline],
        contacts=contacts_of(session, customer.id),
    )


def contacts_of(session: Session, customer_id: str) -> list[ContactPublic]:
    """Active contacts first, champions first among them, then by name."""
    rows = session.exec(
        select(Contact).where(Contact.customer_id == customer_id).order_by(col(Contact.id))
    ).all()
    rank = {r.value: i for i, r in enumerate(ContactRole)}

    def order(row: Contact) -> tuple[bool, int, str]:
        first = min((rank.get(r, len(rank)) for r in row.roles), default=len(rank))
        return (row.status != ContactStatus.active.value, first, row.name.lower())

    return [ContactPublic.model_validate(r) for r in sorted(rows, key=order)]


class CustomerFilters(BaseModel):
    quadrant: str | None = None
    phase: str | None = None
    owner: str | None = None
    rep: str | None = None
    renewal_before: datetime | None = None
    at_risk: bool | None = None

    @field_validator("renewal_before")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # A date without a zone means UTC, like every time Tandem stores.
        return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value


def search_customers(
    session: Session,
    filters: CustomerFilters,
    after: str | None,
    limit: int,
    rep_view: str | None = None,
) -> list[CustomerPublic]:
    """Keyset pagination on the primary key: a page costs the same at 100,000 rows as at
    10, where an OFFSET would scan everything before it. For a rep (`rep_view`, their
    email) only the accounts they are rep on."""
    query = select(Customer).order_by(col(Customer.id)).limit(limit)
    if rep_view is not None:
        query = query.where(Customer.rep == rep_view)
    if filters.rep:
        query = query.where(Customer.rep == filters.rep)
    if after:
        query = query.where(col(Customer.id) > after)
    if filters.quadrant:
        query = query.where(Customer.quadrant == filters.quadrant)
    if filters.phase:
        query = query.where(Customer.phase == filters.phase)
    if filters.owner:
        query = query.where(Customer.owner == filters.owner)
    if filters.renewal_before:
        query = query.where(col(Customer.term_end) < filters.renewal_before)
    if filters.at_risk is not None:
        query = query.where(Customer.at_risk == filters.at_risk)
    return [CustomerPublic.model_validate(c) for c in session.exec(query)]


def assessment_history(
    session: Session, customer_id: str, limit: int = 60
) -> list[AssessmentPublic]:
    """The latest `limit` assessments, oldest first."""
    rows = session.exec(
        select(AssessmentRecord)
        .where(AssessmentRecord.customer_id == customer_id)
        .order_by(col(AssessmentRecord.assessed_at).desc(), col(AssessmentRecord.id).desc())
        .limit(limit)
    ).all()
    return [AssessmentPublic.model_validate(a) for a in reversed(rows)]


def task_inbox(
    session: Session,
    rep_view: str | None,
    status: str | None = "open",
    kind: str | None = None,
    customer_id: str | None = None,
    limit: int = 200,
) -> list[TaskPublic]:
    """A rep's inbox (`rep_view`, their email) is the tasks assigned to them; a
    manager's is all, the managers' queue of rep tasks without a rep included."""
    query = select(TaskRecord).order_by(col(TaskRecord.due_at), col(TaskRecord.id)).limit(limit)
    if rep_view is not None:
        query = query.where(TaskRecord.assignee == rep_view)
    if status:
        query = query.where(TaskRecord.status == status)
    if kind:
        query = query.where(TaskRecord.kind == kind)
    if customer_id:
        query = query.where(TaskRecord.customer_id == customer_id)
    return [TaskPublic.model_validate(t) for t in session.exec(query)]
