"""Plan templates (playbooks): the operator's configuration of a lifecycle.

A plan template is passed into each lifecycle as input, so a running lifecycle keeps
the exact plan it started with even if the file changes later; the version is recorded
on the customer.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.roles import TASK_ROLES, Role
from models.signals import METRIC_PATTERN

# A plan is named, never given as a path: its file is found in the plan folders.
PLAN_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"

# Upper bounds, so a typo (an extra zero, `1e20`) is refused when the plan is checked
# rather than overflowing a date or an agenda in a running lifecycle.
MAX_DAYS = 3650  # ten years: longer than any term, window or wait a plan means
MAX_HOURS = 24 * 365  # the hour-counted waits (reminders, reviews) are short; a year is ample
MAX_NUDGES = 20  # each nudge is an email and a step on the agenda
# Beyond ±40 the logistic is 0 or 1 in double precision: a larger log-odds is a typo.
MAX_LOG_ODDS = 100.0
MAX_VERSION = 2**31 - 1  # the records' INTEGER column
LogOdds = Annotated[float, Field(ge=-MAX_LOG_ODDS, le=MAX_LOG_ODDS)]


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in a plan file must not be silently ignored.
    Numbers must be finite: TOML allows `inf` and `nan`, which would turn every score
    that uses them into nan."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Tutorial(StrictModel):
    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="stable id, used in events")
    title: str = Field(min_length=1)
    url: str = ""
    required: bool = True


class OnboardingSettings(StrictModel):
    tutorials: list[Tutorial] = Field(default_factory=list)
    nudge_after_days: int = Field(default=3, ge=1, le=MAX_DAYS, description="days between nudges")
    max_nudges: int = Field(default=2, ge=0, le=MAX_NUDGES)
    kickoff_due_days: int = Field(default=7, ge=1, le=MAX_DAYS)

    @model_validator(mode="after")
    def _unique_keys(self) -> OnboardingSettings:
        keys = [t.key for t in self.tutorials]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"tutorial keys must be unique, repeated: {', '.join(duplicates)}")
        return self


class TaskSettings(StrictModel):
    remind_before_hours: int = Field(default=24, ge=0, le=MAX_HOURS)
    escalate_after_hours: int = Field(
        default=48, ge=0, le=MAX_HOURS, description="after the due date"
    )


class ReviewSettings(StrictModel):
    checkin_every_days: int = Field(default=30, ge=1, le=MAX_DAYS)
    review_call_every_days: int = Field(default=90, ge=1, le=MAX_DAYS)
    review_call_due_days: int = Field(default=7, ge=1, le=MAX_DAYS)


class RenewalSettings(StrictModel):
    term_days: int = Field(default=365, ge=30, le=MAX_DAYS)
    lead_days: int = Field(
        default=90, ge=1, le=MAX_DAYS, description="days before term end to open it"
    )
    checkpoint_days: list[int] = Field(
        default_factory=lambda: [180, 90], description="days before term end"
    )
    due_days_before_term_end: int = Field(default=14, ge=0, le=MAX_DAYS)

    @model_validator(mode="after")
    def _fits_in_term(self) -> RenewalSettings:
        if self.lead_days >= self.term_days:
            raise ValueError("lead_days must be shorter than term_days")
        if self.due_days_before_term_end >= self.lead_days:
            # The renewal task would be due before the conversation opens.
            raise ValueError("due_days_before_term_end must be shorter than lead_days")
        if any(d <= 0 or d >= self.term_days for d in self.checkpoint_days):
            raise ValueError("every checkpoint must fall inside the term (0 < days < term_days)")
        return self


class CustomerWeights(StrictModel):
    """How much each customer-side component counts; weights renormalise over the
    components measured for the account (models/scoring, docs/scoring.md)."""

    nps: float = Field(default=0.15, ge=0)
    csat: float = Field(default=0.09, ge=0)
    goal_progress: float = Field(default=0.21, ge=0)
    usage_trend: float = Field(default=0.09, ge=0, description="usage against its own past")
    support: float = Field(default=0.06, ge=0, description="first-contact resolution")
    usage_peers: float = Field(default=0.10, ge=0, description="usage against the plan's peers")
    breadth: float = Field(default=0.08, ge=0, description="share of key features used")
    utilisation: float = Field(default=0.10, ge=0, description="active users per seat")
    revenue_movement: float = Field(default=0.07, ge=0, description="MRR change: a downgrade")
    support_load: float = Field(default=0.05, ge=0, description="tickets per active user")

    @model_validator(mode="after")
    def _some_weight(self) -> CustomerWeights:
        # All zero, no component ever counts: every account would stay `unknown`.
        if not any(weight > 0 for weight in self.model_dump().values()):
            raise ValueError("at least one weight must be above 0")
        return self


COMPONENTS = frozenset(CustomerWeights.model_fields) | {"margin"}


class UsageSettings(StrictModel):
    """The product's usage metrics and the windows usage is compared over."""

    metrics: list[str] = Field(
        default_factory=list,
        description="the metrics scored (empty: all); others are recorded, not scored",
    )
    key_features: list[str] = Field(
        default_factory=list, description="metrics that show the product's value being used"
    )
    recent_days: int = Field(
        default=28, ge=7, le=MAX_DAYS, description="the window usage is judged on"
    )
    baseline_days: int = Field(
        default=56, ge=7, le=MAX_DAYS, description="the earlier window it is set against"
    )
    min_peers: int = Field(default=5, ge=2, description="fewer peers than this: no percentile")

    @field_validator("metrics", "key_features")
    @classmethod
    def _metric_names_once(cls, names: list[str]) -> list[str]:
        for name in names:
            if not re.match(METRIC_PATTERN, name):
                raise ValueError(f"{name!r} is not a metric name")
        # A key feature listed twice would count twice in breadth.
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"each metric once, repeated: {', '.join(repeated)}")
        return names

    @model_validator(mode="after")
    def _known_metrics(self) -> UsageSettings:
        unknown = [m for m in self.key_features if self.metrics and m not in self.metrics]
        if unknown:
            raise ValueError(
                f"key_features: unknown metric {', '.join(map(repr, unknown))} "
                f"(the plan's metrics: {', '.join(self.metrics)})"
            )
        return self


class CostToServe(StrictModel):
    """The estimate used when no cost is recorded: the explanation marks it estimated."""

    per_account_monthly: float = Field(default=100, ge=0, description="base cost of an account")
    per_ticket: float = Field(default=25, ge=0)
    per_success_hour: float = Field(default=80, ge=0)


class RiskSettings(StrictModel):
    """Churn risk: the probability that the account churns within `horizon_days`.

    Until calibrated (no `coefficients`), z = intercept + customer_slope * customer score
    + company_slope * company score (a missing score counts as 0, neutral); calibrated,
    z = intercept + sum(coefficient * component). risk = 1 / (1 + exp(-z)).
    """

    horizon_days: int = Field(default=90, ge=7, le=730)
    at_risk: Literal["quadrant", "churn_risk"] = Field(
        default="quadrant",
        description="quadrant: unhappy or a risk flag; churn_risk: churn_risk above threshold",
    )
    threshold: float = Field(default=0.3, gt=0, lt=1)
    intercept: LogOdds = Field(default=-2.2, description="log-odds of churn at a neutral account")
    customer_slope: LogOdds = Field(default=-3.0, le=0)
    company_slope: LogOdds = Field(default=-0.5, le=0)
    coefficients: dict[str, LogOdds] = Field(
        default_factory=dict, description="calibrated: log-odds per unit of each component"
    )

    @model_validator(mode="after")
    def _known_components(self) -> RiskSettings:
        unknown = sorted(set(self.coefficients) - COMPONENTS)
        if unknown:
            raise ValueError(
                f"coefficients: unknown component {', '.join(map(repr, unknown))} "
                f"(components: {', '.join(sorted(COMPONENTS))})"
            )
        return self


class ScoringSettings(StrictModel):
    weights: CustomerWeights = Field(default_factory=CustomerWeights)
    usage: UsageSettings = Field(default_factory=UsageSettings)
    cost: CostToServe = Field(default_factory=CostToServe)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    target_margin: float = Field(
        default=0.4, gt=0, le=1, description="margin (revenue - cost) / revenue that scores 0.5"
    )
    neutral_band: float = Field(default=0.1, ge=0, lt=1)
    high_profit: float = Field(
        default=0.6, gt=0, le=1, description="company score above which neutral is a risk"
    )
    window_days: int = Field(
        default=90, ge=1, le=MAX_DAYS, description="signals older than this are ignored"
    )
    min_customer_signals: int = Field(
        default=1, ge=1, description="fewer customer-side inputs than this give 'unknown'"
    )

    @model_validator(mode="after")
    def _reachable_minimum(self) -> ScoringSettings:
        # Only weighted components count as inputs: asking for more, every account stays
        # `unknown`.
        weighted = sum(weight > 0 for weight in self.weights.model_dump().values())
        if self.min_customer_signals > weighted:
            raise ValueError(
                f"min_customer_signals: {self.min_customer_signals} is more than the "
                f"{weighted} weighted component(s) in scoring.weights"
            )
        return self

    @property
    def lookback_days(self) -> int:
        """How far back an assessment reads: the window, or the usage windows if longer."""
        return max(self.window_days, self.usage.recent_days + self.usage.baseline_days)


class EmailReviewSettings(StrictModel):
    """Customer emails wait for the account's manager to approve or edit them."""

    enabled: bool = False
    deadline_hours: int = Field(default=24, ge=1, le=MAX_HOURS)
    on_deadline: Literal["send", "drop"] = Field(
        default="send", description="what happens to an email nobody reviewed in time"
    )


class Playbook(StrictModel):
    """The work one situation opens: a task for a role, with its own due date."""

    title: str = Field(min_length=1)
    owner_role: Role = Role.manager
    due_days: int = Field(default=7, ge=1, le=MAX_DAYS)
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
    """Keys are quadrants, plus the 'neutral but highly profitable' risk and a champion
    who left the account (removed, marked as left, or bouncing)."""

    unhappy_profitable: Playbook | None = None
    happy_unprofitable: Playbook | None = None
    unhappy_unprofitable: Playbook | None = None
    happy_profitable: Playbook | None = None
    neutral_high_profit: Playbook | None = None
    champion_left: Playbook | None = None


@lru_cache(maxsize=4096)  # asked for every event ingested; a product has few names
def metric_name(event: str) -> str | None:
    """An event's name as a metric name: lower case, anything else as `_`."""
    name = re.sub(r"[^a-z0-9_.:-]+", "_", event.strip().lower()).strip("_.:-")
    return name[:100] or None


class TutorialEvent(StrictModel):
    """An event that completes a tutorial: its name, and property values it must carry."""

    tutorial: str = Field(description="the tutorial's key")
    event: str = Field(min_length=1)
    properties: dict[str, str | int | float | bool] = Field(default_factory=dict)


class GoalEvent(StrictModel):
    """An event that measures a goal: the goal's value is one of its properties."""

    goal: str = Field(min_length=1, description="the success plan goal's key")
    event: str = Field(min_length=1)
    property: str = Field(min_length=1, description="the property holding the measured value")


class GroupTraits(StrictModel):
    """Which traits of a `group` call carry the account's MRR, plan and seats."""

    mrr: str = "mrr"
    plan: str = "plan"
    seats: str = "seats"


class EventMapping(StrictModel):
    """How product events (Segment calls) count for this plan's accounts."""

    metrics: dict[str, str] = Field(
        default_factory=dict, description="event name -> metric; by default its own name"
    )
    ignore: list[str] = Field(default_factory=list, description="event names not counted")
    tutorials: list[TutorialEvent] = Field(default_factory=list)
    goals: list[GoalEvent] = Field(default_factory=list)
    traits: GroupTraits = Field(default_factory=GroupTraits)

    @field_validator("metrics")
    @classmethod
    def _metric_names(cls, metrics: dict[str, str]) -> dict[str, str]:
        wrong = sorted(m for m in metrics.values() if not re.match(METRIC_PATTERN, m))
        if wrong:
            raise ValueError(
                f"metric names are lower-case letters, digits and _ . : - ; not {', '.join(wrong)}"
            )
        return metrics

    def metric(self, event: str) -> str | None:
        """The metric an event counts toward, or None when it is not counted: the plan's
        name for it, else the event's own name as a metric name (`Report Created` counts
        as `report_created`)."""
        if event in self.ignore:
            return None
        return self.metrics.get(event) or metric_name(event)


class PlanTemplate(StrictModel):
    name: str = Field(pattern=PLAN_NAME_PATTERN)
    version: int = Field(default=1, ge=1, le=MAX_VERSION)
    description: str = ""
    onboarding: OnboardingSettings = Field(default_factory=OnboardingSettings)
    tasks: TaskSettings = Field(default_factory=TaskSettings)
    reviews: ReviewSettings = Field(default_factory=ReviewSettings)
    renewal: RenewalSettings = Field(default_factory=RenewalSettings)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    playbooks: Playbooks = Field(default_factory=Playbooks)
    email_review: EmailReviewSettings = Field(default_factory=EmailReviewSettings)
    events: EventMapping = Field(default_factory=EventMapping)

    @model_validator(mode="after")
    def _known_tutorials(self) -> PlanTemplate:
        keys = {t.key for t in self.onboarding.tutorials}
        unknown = sorted({t.tutorial for t in self.events.tutorials} - keys)
        if unknown:
            raise ValueError(
                f"events.tutorials name tutorials the plan lacks: {', '.join(unknown)}"
            )
        return self

    @property
    def label(self) -> str:
        return f"{self.name}@v{self.version}"

    def required_tutorials(self) -> list[str]:
        return [t.key for t in self.onboarding.tutorials if t.required]
