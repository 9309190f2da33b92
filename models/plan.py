"""Plan templates (playbooks): the operator's configuration of a lifecycle.

A plan template is passed into each lifecycle as input, so a running lifecycle keeps
the exact plan it started with even if the file changes later; the version is recorded
on the customer.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.roles import TASK_ROLES, Role

# A plan is named, never given as a path: its file is found in the plan folders.
PLAN_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in a plan file must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Tutorial(StrictModel):
    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="stable id, used in events")
    title: str = Field(min_length=1)
    url: str = ""
    required: bool = True


class OnboardingSettings(StrictModel):
    tutorials: list[Tutorial] = Field(default_factory=list)
    nudge_after_days: int = Field(default=3, ge=1, description="days between nudges")
    max_nudges: int = Field(default=2, ge=0)
    kickoff_due_days: int = Field(default=7, ge=1)

    @model_validator(mode="after")
    def _unique_keys(self) -> OnboardingSettings:
        keys = [t.key for t in self.tutorials]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"tutorial keys must be unique, repeated: {', '.join(duplicates)}")
        return self


class TaskSettings(StrictModel):
    remind_before_hours: int = Field(default=24, ge=0)
    escalate_after_hours: int = Field(default=48, ge=0, description="after the due date")


class ReviewSettings(StrictModel):
    checkin_every_days: int = Field(default=30, ge=1)
    review_call_every_days: int = Field(default=90, ge=1)
    review_call_due_days: int = Field(default=7, ge=1)


class RenewalSettings(StrictModel):
    term_days: int = Field(default=365, ge=30)
    lead_days: int = Field(default=90, ge=1, description="days before term end to open it")
    checkpoint_days: list[int] = Field(
        default_factory=lambda: [180, 90], description="days before term end"
    )
    due_days_before_term_end: int = Field(default=14, ge=0)

    @model_validator(mode="after")
    def _fits_in_term(self) -> RenewalSettings:
        if self.lead_days >= self.term_days:
            raise ValueError("lead_days must be shorter than term_days")
        if any(d <= 0 or d >= self.term_days for d in self.checkpoint_days):
            raise ValueError("every checkpoint must fall inside the term (0 < days < term_days)")
        return self


class CustomerWeights(StrictModel):
    nps: float = Field(default=0.25, ge=0)
    csat: float = Field(default=0.15, ge=0)
    goal_progress: float = Field(default=0.35, ge=0)
    usage_trend: float = Field(default=0.15, ge=0)
    support: float = Field(default=0.10, ge=0)


class ScoringSettings(StrictModel):
    weights: CustomerWeights = Field(default_factory=CustomerWeights)
    target_margin: float = Field(
        default=0.4, gt=0, le=1, description="margin (revenue - cost) / revenue that scores 0.5"
    )
    neutral_band: float = Field(default=0.1, ge=0, lt=1)
    high_profit: float = Field(
        default=0.6, gt=0, le=1, description="company score above which neutral is a risk"
    )
    window_days: int = Field(default=90, ge=1, description="signals older than this are ignored")
    min_customer_signals: int = Field(
        default=2, ge=1, description="fewer customer-side inputs than this give 'unknown'"
    )


class EmailReviewSettings(StrictModel):
    """Customer emails wait for the account's manager to approve or edit them."""

    enabled: bool = False
    deadline_hours: int = Field(default=24, ge=1)
    on_deadline: Literal["send", "drop"] = Field(
        default="send", description="what happens to an email nobody reviewed in time"
    )


class Playbook(StrictModel):
    """The work one situation opens: a task for a role, with its own due date."""

    title: str = Field(min_length=1)
    owner_role: Role = Role.manager
    due_days: int = Field(default=7, ge=1)
    requires_decision: bool = Field(
        default=False, description="the result must record recover or let_go"
    )

    @field_validator("owner_role", mode="before")
    @classmethod
    def _a_task_role(cls, role: object) -> object:
        if role not in TASK_ROLES:  # admins run Tandem, not accounts
            raise ValueError(f"should be 'rep' or 'manager', not {role!r}")
        return role


class Playbooks(StrictModel):
    """Keys are quadrants, plus the 'neutral but highly profitable' risk."""

    unhappy_profitable: Playbook | None = None
    happy_unprofitable: Playbook | None = None
    unhappy_unprofitable: Playbook | None = None
    happy_profitable: Playbook | None = None
    neutral_high_profit: Playbook | None = None


class PlanTemplate(StrictModel):
    name: str = Field(pattern=PLAN_NAME_PATTERN)
    version: int = Field(default=1, ge=1)
    description: str = ""
    onboarding: OnboardingSettings = Field(default_factory=OnboardingSettings)
    tasks: TaskSettings = Field(default_factory=TaskSettings)
    reviews: ReviewSettings = Field(default_factory=ReviewSettings)
    renewal: RenewalSettings = Field(default_factory=RenewalSettings)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    playbooks: Playbooks = Field(default_factory=Playbooks)
    email_review: EmailReviewSettings = Field(default_factory=EmailReviewSettings)

    @property
    def label(self) -> str:
        return f"{self.name}@v{self.version}"

    def required_tutorials(self) -> list[str]:
        return [t.key for t in self.onboarding.tutorials if t.required]
