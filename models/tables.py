"""The records: the queryable projection that the CLI (and later the API) reads.

The lifecycle is the source of truth for what happens next; these rows are written by
activities and by signal ingestion only. Unique keys make every activity write
idempotent, so a retried activity never writes twice.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.scoring.risk import over_horizon

# The days of the portfolio's renewal forecast, over which each customer row keeps its
# churn risk (db/forecast.py reads it).
FORECAST_RISK_DAYS = 90


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always reads back timezone-aware, on SQLite as on PostgreSQL
    (SQLite keeps no zone, and comparing naive with aware datetimes is an error)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: Tandem stores timezone-aware times only")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _when(**kwargs: Any) -> Any:
    index = kwargs.pop("index", False)
    nullable = kwargs.pop("nullable", False)
    return Field(sa_column=Column(UTCDateTime(), index=index, nullable=nullable), **kwargs)


class Customer(SQLModel, table=True):
    # The customer list filters on one of these and pages by id (keyset): with the id in
    # the index, a filtered page is read in order and the scan stops at the page's end.
    # (term_end, "renewal due before", is a range: its own index, index=True, serves it.)
    __table_args__ = (
        Index("ix_customer_quadrant_id", "quadrant", "id"),
        Index("ix_customer_phase_id", "phase", "id"),
        Index("ix_customer_owner_id", "owner", "id"),
        Index("ix_customer_rep_id", "rep", "id"),
        Index("ix_customer_at_risk_id", "at_risk", "id"),
    )

    id: str = Field(primary_key=True, max_length=64)
    company: str = Field(index=True)
    contact_name: str
    email: str
    external_id: str | None = Field(default=None, index=True)
    # The owning success manager and the account's rep, by their staff email; written
    # by the assignment (db.assignment) at sign-up and on reassignment, never by the
    # lifecycle's snapshots.
    owner: str | None = Field(default=None, index=True)
    rep: str | None = None
    plan_name: str
    plan_version: int
    phase: str = Field(index=True)
    term: int = 1
    term_start: datetime = _when()
    term_end: datetime = _when(index=True)
    onboarded: bool = False
    # Where the account stands: its latest assessment's quadrant, level and scores, and
    # when; and the assessment before that. The portfolio reads movement over a period,
    # the scatter and the risk list from this row instead of searching each customer's
    # assessment history (written by `stand`, from the assessment activity).
    quadrant: str = Field(default="unknown", index=True)
    level: float | None = None
    customer_score: float | None = None
    company_score: float | None = None
    trend: float | None = None
    assessed_at: datetime | None = _when(default=None, nullable=True)
    previous_quadrant: str | None = None
    previous_level: float | None = None
    previous_customer_score: float | None = None
    previous_company_score: float | None = None
    # Indexed: the few accounts assessed twice within a period are found without a scan.
    previous_assessed_at: datetime | None = _when(default=None, nullable=True, index=True)
    at_risk: bool = Field(default=False, index=True)
    # The latest assessment's churn risk over the renewal forecast's days (db/forecast.py),
    # whatever the plan's horizon: the forecast reads it here for every renewing account.
    churn_risk: float | None = None
    # The latest MRR recorded for the account, and when it was observed: the renewal
    # forecast reads it here instead of searching each renewing account's signals
    # (kept by `db.ingest.keep_latest_mrr` wherever an MRR signal is recorded).
    mrr: float | None = None
    mrr_observed_at: datetime | None = _when(default=None, nullable=True)
    # The latest assessment's revenue per month (its `revenue` input: revenue signals
    # spread over the period they cover, each reading once): the forecast's figure for
    # an account with no MRR on record, where a quarterly invoice is a third a month.
    monthly_revenue: float | None = None
    renewal_outcome: str | None = None
    churn_reason: str | None = None
    # The contact opted out of automated email (their unsubscribe link, or staff acting
    # on a reply): the email activity reads it at send time, so the lifecycle needs no news.
    unsubscribed_at: datetime | None = _when(default=None, nullable=True)
    unsubscribed_by: str | None = None
    created_at: datetime = _when(default_factory=utcnow)
    updated_at: datetime = _when(default_factory=utcnow)

    def stand(self, assessment: AssessmentRecord) -> bool:
        """Take in an assessment: the row keeps the latest two, newest first, whatever
        order a reassessment and a check-in are recorded in. True if it is the latest."""
        a = assessment
        standing = (a.quadrant, a.level, a.customer_score, a.company_score, a.assessed_at)
        latest = self.assessed_at
        if latest is not None and a.assessed_at < latest:
            if self.previous_assessed_at is None or a.assessed_at > self.previous_assessed_at:
                self._set_previous(*standing)
            return False
        if latest is not None:
            self._set_previous(
                self.quadrant, self.level, self.customer_score, self.company_score, latest
            )
        self.quadrant, self.level, self.customer_score, self.company_score = standing[:4]
        self.trend, self.assessed_at = a.trend, a.assessed_at
        detail = a.detail or {}
        self.churn_risk = None
        if a.churn_risk is not None:
            horizon = detail.get("horizon_days") or FORECAST_RISK_DAYS
            self.churn_risk = over_horizon(a.churn_risk, horizon, FORECAST_RISK_DAYS)
        self.monthly_revenue = (detail.get("inputs") or {}).get("revenue")
        return True

    def _set_previous(
        self,
        quadrant: str,
        level: float | None,
        customer_score: float | None,
        company_score: float | None,
        assessed_at: datetime,
    ) -> None:
        self.previous_quadrant, self.previous_level = quadrant, level
        self.previous_customer_score, self.previous_company_score = customer_score, company_score
        self.previous_assessed_at = assessed_at


class SuccessPlanRecord(SQLModel, table=True):
    __tablename__ = "success_plan"
    __table_args__ = (UniqueConstraint("customer_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(foreign_key="customer.id", index=True)
    version: int
    author: str
    source: str = Field(default="manager", index=True, description="manager or customer")
    intended_use: str
    success_definition: str
    objectives: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    constraints: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _when()


class GoalRecord(SQLModel, table=True):
    __tablename__ = "goal"
    __table_args__ = (UniqueConstraint("plan_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="success_plan.id", index=True)
    customer_id: str = Field(foreign_key="customer.id", index=True)
    key: str
    metric: str
    unit: str = ""
    baseline: float
    target: float
    direction: str
    target_date: date


class TaskRecord(SQLModel, table=True):
    __tablename__ = "task"
    # Task lists and inboxes: open work soonest due first (due_at, then id), for everyone,
    # for a role, for an assignee; and one customer's open tasks.
    __table_args__ = (
        Index("ix_task_status_due_at_id", "status", "due_at", "id"),
        Index("ix_task_owner_role_status_due_at_id", "owner_role", "status", "due_at", "id"),
        Index("ix_task_assignee_status_due_at_id", "assignee", "status", "due_at", "id"),
        Index("ix_task_customer_id_status", "customer_id", "status"),
    )

    id: str = Field(primary_key=True, max_length=160)
    customer_id: str = Field(foreign_key="customer.id", index=True)
    kind: str = Field(index=True)
    title: str
    owner_role: str = Field(index=True)
    assignee: str | None = Field(default=None, index=True)
    status: str = Field(index=True)
    due_at: datetime = _when(index=True)
    created_at: datetime = _when()
    reminded: bool = False
    escalated: bool = False
    playbook: str | None = None
    email_key: str | None = None
    completed_at: datetime | None = _when(default=None, nullable=True)
    completed_by: str | None = None
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class SignalRecord(SQLModel, table=True):
    __tablename__ = "signal"
    __table_args__ = (
        UniqueConstraint("customer_id", "client_id"),
        # One customer's signals of a kind over time: goal values, survey answers.
        Index("ix_signal_customer_id_kind_observed_at", "customer_id", "kind", "observed_at"),
        # The portfolio's revenue in a period: one kind's recent rows, read from the
        # index alone on PostgreSQL (which carries the summed columns along).
        Index(
            "ix_signal_kind_observed_at",
            "kind",
            "observed_at",
            postgresql_include=["customer_id", "value"],
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(foreign_key="customer.id", index=True)
    kind: str = Field(index=True)
    value: float
    goal_key: str | None = None
    # Usage only: which metric (None is the metric `usage`), and the start of the period
    # a count covers, so scoring can turn it into a daily rate (models/signals.py).
    metric: str | None = None
    period_start: datetime | None = _when(default=None, nullable=True)
    observed_at: datetime = _when(index=True)
    source: str = "cli"
    client_id: str | None = None
    recorded_at: datetime = _when(default_factory=utcnow)
    # A survey answer's contact (their address): the account's NPS counts each active
    # contact's latest answer once. None: an answer for the account as a whole. (No
    # length in the schema, as client_id: PostgreSQL's planner prices an unanalysed
    # table's rows by their declared widths.)
    contact_email: str | None = None


class AssessmentRecord(SQLModel, table=True):
    __tablename__ = "assessment"
    __table_args__ = (
        UniqueConstraint("customer_id", "key"),
        # The latest assessment and the history: newest first, ties by id.
        Index("ix_assessment_customer_id_assessed_at_id", "customer_id", "assessed_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(foreign_key="customer.id", index=True)
    key: str
    assessed_at: datetime = _when(index=True)
    customer_score: float | None = None
    company_score: float | None = None
    quadrant: str
    level: float | None = None
    trend: float | None = None
    churn_risk: float | None = None  # probability of churn within the plan's horizon
    detail: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class OutboxStatus(StrEnum):
    """Where an email stands in the outbox (stored as these words)."""

    pending = "pending"  # composed; to be delivered
    held = "held"  # waits for a manager's review
    sent = "sent"
    dropped = "dropped"  # a manager's review rejected it
    failed = "failed"  # the recipient was refused: retrying cannot help
    suppressed = "suppressed"  # the customer unsubscribed: kept, not sent


class OutboxEmail(SQLModel, table=True):
    __tablename__ = "outbox"
    # One customer's recent emails, newest first.
    __table_args__ = (Index("ix_outbox_customer_id_created_at", "customer_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=240)
    # Customer mail is one copy per recipient, each with its own links: the lifecycle
    # step's key, shared by its copies (None: mail stored before copies existed, or a
    # digest). A copy for a contact names them; None for an account's own address.
    request_key: str | None = Field(default=None, max_length=240, index=True)
    contact_email: str | None = Field(default=None, max_length=320)
    customer_id: str = Field(foreign_key="customer.id", index=True)
    template: str
    to_address: str
    subject: str
    text_body: str
    html_body: str
    status: str = Field(default=OutboxStatus.pending, index=True)  # an OutboxStatus
    attempts: int = 0
    last_error: str | None = None
    delivered_via: str | None = None
    created_at: datetime = _when(default_factory=utcnow)
    delivered_at: datetime | None = _when(default=None, nullable=True)


class TimelineEvent(SQLModel, table=True):
    __tablename__ = "timeline"
    __table_args__ = (
        UniqueConstraint("customer_id", "key"),
        # One customer's timeline, newest first, ties by id.
        Index("ix_timeline_customer_id_at_id", "customer_id", "at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(foreign_key="customer.id", index=True)
    key: str
    at: datetime = _when(index=True)
    kind: str
    message: str


class ApiToken(SQLModel, table=True):
    """An API token; only its SHA-256 is stored, the token itself is shown once. It
    belongs to a staff member and acts with their role; `role` and `person` are kept
    for tokens made before staff existed, which act as recorded until reissued."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str
    staff_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    role: str = Field(index=True)
    person: str | None = Field(default=None, description="matches task assignees (reps)")
    token_hash: str = Field(unique=True, max_length=64)
    prefix: str = Field(max_length=12)
    created_at: datetime = _when(default_factory=utcnow)
    last_used_at: datetime | None = _when(default=None, nullable=True)
    revoked_at: datetime | None = _when(default=None, nullable=True)


class AuditEntry(SQLModel, table=True):
    """Who did what and when: task completions, plan changes, tokens."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when(default_factory=utcnow, index=True)
    actor: str
    action: str = Field(index=True)
    subject: str = Field(index=True)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
