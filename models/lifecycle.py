"""The lifecycle's own state: what one customer's workflow carries from step to step
and across continue-as-new, and what it reports when asked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from models.customer import CustomerProfile
from models.imports import ImportedAccount
from models.plan import PlanTemplate
from models.scoring import PreviousAssessment, Quadrant, Risk
from models.success_plan import SuccessPlan
from models.tasks import RenewalOutcome, RenewalResult, Task, TaskReceipt, TaskStatus


class Phase(StrEnum):
    onboarding = "onboarding"  # welcome, tutorials, kickoff
    adopting = "adopting"  # success plan in place; check-ins and reviews
    renewal = "renewal"  # the renewal conversation is open
    churned = "churned"  # the lifecycle has ended


class StepKind(StrEnum):
    welcome = "welcome"
    tutorial_nudge = "tutorial_nudge"
    check_in = "check_in"
    review_call = "review_call"
    renewal_checkpoint = "renewal_checkpoint"
    renewal = "renewal"
    imported = "imported"  # an existing account's first step: no welcome


@dataclass(frozen=True)
class Step:
    """One dated step of a term's agenda; `key` is unique within the term. A dataclass:
    the agenda is computed afresh at every step, a score of them a term, and a
    pydantic model validated each one."""

    key: str
    kind: StepKind
    at: datetime


class TermRecord(BaseModel):
    term: int
    started: datetime
    ended: datetime
    outcome: RenewalOutcome
    reason: str


class LastAssessment(BaseModel):
    assessed_at: datetime
    quadrant: Quadrant
    level: float | None
    customer_score: float | None
    company_score: float | None
    risks: list[Risk] = Field(default_factory=list)

    def as_previous(self) -> PreviousAssessment:
        return PreviousAssessment(quadrant=self.quadrant, level=self.level)


class LifecycleState(BaseModel):
    """Everything the lifecycle needs to resume exactly where it was."""

    customer: CustomerProfile
    plan: PlanTemplate
    signed_up_at: datetime
    term: int = 1
    term_start: datetime
    term_end: datetime
    phase: Phase = Phase.onboarding
    signup_acknowledged: bool = False
    steps_done: list[str] = Field(default_factory=list)
    tutorials_done: list[str] = Field(default_factory=list)
    onboarded: bool = False
    success_plan: SuccessPlan | None = None
    success_plan_version: int = 0
    customer_definition: str | None = Field(
        default=None, description="success in the customer's own words, from their page"
    )
    tasks: dict[str, Task] = Field(default_factory=dict)
    receipts: dict[str, TaskReceipt] = Field(
        default_factory=dict,
        description="each task completion's receipt, by the id of the update that sent "
        "it: Temporal forgets update ids when a lifecycle continues as new, and a client "
        "retrying late must still get its receipt rather than 'task is not open'",
    )
    last_assessment: LastAssessment | None = None
    reassessments: int = Field(default=0, description="assessments asked for between check-ins")
    renewal: RenewalResult | None = None
    cancel_reason: str | None = None
    history: list[TermRecord] = Field(default_factory=list)
    imported: ImportedAccount | None = Field(
        default=None, description="an existing account, imported mid-term"
    )
    imported_at: datetime | None = Field(
        default=None, description="the import's day: the first term's steps before it are skipped"
    )

    def open_tasks(self) -> list[Task]:
        return [t for t in self.tasks.values() if t.status is TaskStatus.open]


class LifecycleInput(BaseModel):
    """Start a new lifecycle (customer + plan) or resume one (state)."""

    customer: CustomerProfile
    plan: PlanTemplate
    state: LifecycleState | None = None
    imported: ImportedAccount | None = None
    steps_per_run: int | None = Field(
        default=None,
        ge=1,
        description="continue-as-new after this many steps, besides when Temporal suggests it",
    )


class LifecycleStatus(BaseModel):
    """What the `status` query returns."""

    customer_id: str
    company: str
    phase: Phase
    term: int
    term_end: datetime
    plan: str
    onboarded: bool
    tutorials_done: list[str]
    success_plan: SuccessPlan | None
    customer_definition: str | None = None
    open_tasks: list[Task]
    last_assessment: LastAssessment | None
    next_step: Step | None


class LifecycleEnd(BaseModel):
    """What a lifecycle returns when it ends (churn or cancellation)."""

    customer_id: str
    terms: int
    reason: str


class SignupIdentity(BaseModel):
    """Who a sign-up says the customer is. Different external ids can make one customer
    id (`ACME_1` and `acme-1`), so a running lifecycle checks it is theirs."""

    external_id: str | None = None


class SignupReceipt(BaseModel):
    customer_id: str
    workflow_id: str
    phase: Phase
    new: bool = Field(description="False when this customer had already signed up")
    plan: str


class CustomerPlanReceipt(BaseModel):
    customer_id: str
    version: int
    recorded_at: datetime
