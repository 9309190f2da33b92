"""Read models: what the API returns, the CLI prints and the dashboard shows.

The records (models/tables.py) are how Tandem stores an account; these are how it shows
one. They are built from record rows (`from_attributes`), so a column added for storage
alone (the previous assessment the portfolio compares against, a plan row's id) stays
out of every reader's view until it is added here, once, for all three.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field

from models.contacts import ContactPublic
from models.lifecycle import Phase
from models.roles import Role
from models.scoring import Explained, Quadrant
from models.tasks import TaskKind, TaskResult, TaskStatus


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CustomerPublic(ReadModel):
    """One account: who they are, where their lifecycle stands, how they are doing."""

    id: str
    company: str
    contact_name: str
    email: str
    external_id: str | None
    owner: str | None = Field(description="their success manager's email")
    rep: str | None = Field(description="their rep's email (None: the managers' queue)")
    plan_name: str
    plan_version: int
    phase: Phase
    term: int
    term_start: datetime
    term_end: datetime
    onboarded: bool
    quadrant: Quadrant = Field(description="the latest assessment's quadrant")
    level: float | None = Field(description="the latest position along the diagonal, -1..1")
    customer_score: float | None
    company_score: float | None
    assessed_at: datetime | None
    at_risk: bool
    churn_risk: float | None = Field(description="probability of churn within the horizon")
    renewal_outcome: str | None
    churn_reason: str | None
    unsubscribed_at: datetime | None = Field(description="opted out of automated email")
    unsubscribed_by: str | None
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def plan(self) -> str:
        """The plan template and version the customer is on, as `name@vN`."""
        return f"{self.plan_name}@v{self.plan_version}"


class CustomersPublic(ReadModel):
    """A page of accounts; `next_cursor` fetches the next one (None on the last)."""

    items: list[CustomerPublic]
    next_cursor: str | None


class SuccessPlanPublic(ReadModel):
    """A version of the success plan, as the manager recorded it or as the customer
    wrote it on their own page (`source`)."""

    version: int
    author: str
    source: str = Field(description="manager or customer")
    intended_use: str
    success_definition: str
    objectives: list[str]
    constraints: list[str]
    created_at: datetime


class GoalPublic(ReadModel):
    """A goal of the success plan with its latest measured value."""

    key: str
    metric: str
    unit: str
    baseline: float
    target: float
    direction: str
    target_date: date
    current: float | None = Field(default=None, description="the latest measured value")
    progress: float | None = Field(
        default=None, description="the share of the way from baseline to target"
    )


class TaskPublic(ReadModel):
    """Human work inside a lifecycle."""

    id: str
    customer_id: str
    kind: TaskKind
    title: str
    owner_role: Role
    assignee: str | None
    status: TaskStatus
    due_at: datetime
    created_at: datetime
    reminded: bool
    escalated: bool
    playbook: str | None = Field(description="the playbook that opened it")
    email_key: str | None = Field(description="the email an email_review is about")
    completed_at: datetime | None
    completed_by: str | None
    result: TaskResult | None = Field(description="the typed result of its kind, once done")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def overdue(self) -> bool:
        """Open past its due time, as of reading."""
        return self.status is TaskStatus.open and self.due_at < datetime.now(UTC)


class AssessmentDetailPublic(ReadModel):
    """Why an assessment landed where it did."""

    previous_quadrant: Quadrant | None = None
    risks: list[str] = Field(default_factory=list)
    components: dict[str, float] = Field(default_factory=dict, description="axis inputs, -1..1")
    inputs: dict[str, float] = Field(default_factory=dict, description="raw figures used")
    missing: list[str] = Field(default_factory=list, description="inputs not measured")
    estimated: list[str] = Field(default_factory=list, description="inputs estimated, e.g. cost")
    explanation: list[Explained] = Field(
        default_factory=list, description="each component: its raw figure, score and weight"
    )
    goal_progress: dict[str, float] = Field(default_factory=dict)
    horizon_days: int | None = Field(default=None, description="the churn risk's horizon")
    at_risk: bool = False


class AssessmentPublic(ReadModel):
    """Where the account stood at one check-in or reassessment."""

    assessed_at: datetime
    quadrant: Quadrant
    customer_score: float | None
    company_score: float | None
    level: float | None
    trend: float | None = Field(description="level change since the previous one")
    churn_risk: float | None
    detail: AssessmentDetailPublic


class EmailPublic(ReadModel):
    key: str
    template: str
    to_address: str
    subject: str
    status: str
    created_at: datetime


class TimelineEventPublic(ReadModel):
    at: datetime
    kind: str
    message: str


class CustomerDetailPublic(ReadModel):
    """One account's whole picture."""

    customer: CustomerPublic
    success_plan: SuccessPlanPublic | None = Field(description="the manager's latest version")
    customer_words: SuccessPlanPublic | None = Field(
        description="the latest the customer wrote on their own page"
    )
    goals: list[GoalPublic]
    open_tasks: list[TaskPublic]
    assessments: list[AssessmentPublic] = Field(description="oldest first, the latest last")
    emails: list[EmailPublic] = Field(description="newest first")
    timeline: list[TimelineEventPublic] = Field(description="newest first")
    contacts: list[ContactPublic] = Field(
        default_factory=list, description="the people at the account, active champions first"
    )

    @property
    def assessment(self) -> AssessmentPublic | None:
        """The latest assessment."""
        return self.assessments[-1] if self.assessments else None
