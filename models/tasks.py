"""Human work inside a lifecycle: tasks, their typed results, and how a result is checked."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from models.roles import Role
from models.scoring import Quadrant
from models.signals import Figure
from models.success_plan import SuccessPlan


class TaskKind(StrEnum):
    kickoff = "kickoff"
    review_call = "review_call"
    renewal_checkpoint = "renewal_checkpoint"
    renewal = "renewal"
    playbook = "playbook"
    email_review = "email_review"


class TaskStatus(StrEnum):
    open = "open"
    done = "done"
    cancelled = "cancelled"


@dataclass(frozen=True)
class TaskKey:
    """A task's id, `{customer}:t{term}:{key}`: the same on every replay, unique per
    customer and term. The lifecycle keys a step's emails, events and assessments the
    same way, so an email names the term it belongs to."""

    customer_id: str
    term: int
    key: str  # the step's own, unique within the term; may itself hold ':'

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.local}"

    @property
    def local(self) -> str:
        """Without the customer: `t{term}:{key}`."""
        return f"t{self.term}:{self.key}"

    @classmethod
    def parse(cls, task_id: str) -> TaskKey:
        customer_id, _, rest = task_id.partition(":")
        term, _, key = rest.partition(":")
        if not (customer_id and key and term[:1] == "t" and term[1:].isdigit()):
            raise ValueError(f"task id {task_id!r} is not of the form <customer>:t<term>:<key>")
        return cls(customer_id, int(term[1:]), key)


class Task(BaseModel):
    """A task as the lifecycle tracks it (the database row mirrors this)."""

    task_id: str
    customer_id: str
    kind: TaskKind
    title: str
    owner_role: Role
    assignee: str | None = None
    due_at: datetime
    created_at: datetime
    status: TaskStatus = TaskStatus.open
    reminded: bool = False
    escalated: bool = False
    playbook: str | None = Field(default=None, description="which playbook opened it")
    requires_decision: bool = False
    email_key: str | None = Field(default=None, description="the email an email_review is about")


@dataclass(frozen=True)
class NewTask:
    """What a step asks of a person: the desk gives it an id, an assignee and dates."""

    key: str  # the step's own, unique within the term
    kind: TaskKind
    title: str
    owner_role: Role
    due_in: timedelta
    playbook: str | None = None
    requires_decision: bool = False
    email_key: str | None = None


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KickoffResult(_Result):
    """The kickoff's result *is* the success plan, in the customer's words."""

    kind: Literal["kickoff"] = "kickoff"
    success_plan: SuccessPlan
    onboarding_complete: bool = Field(
        default=False, description="the customer is set up even if tutorials are left"
    )
    notes: str = ""


class ReviewCallResult(_Result):
    kind: Literal["review_call"] = "review_call"
    notes: str = Field(min_length=1)
    goal_progress: dict[str, Figure] = Field(
        default_factory=dict, description="goal key -> current measured value"
    )
    next_steps: list[str] = Field(default_factory=list)
    revised_plan: SuccessPlan | None = None


class RenewalCheckpointResult(_Result):
    """The manager's own rating of the account, compared with the automated one."""

    kind: Literal["renewal_checkpoint"] = "renewal_checkpoint"
    manager_rating: Quadrant
    notes: str = ""


class RenewalOutcome(StrEnum):
    renewed = "renewed"
    expanded = "expanded"
    downgraded = "downgraded"
    churned = "churned"


class RenewalResult(_Result):
    kind: Literal["renewal"] = "renewal"
    outcome: RenewalOutcome
    reason: str = Field(min_length=1)
    revised_plan: SuccessPlan | None = None


class Decision(StrEnum):
    recover = "recover"
    let_go = "let_go"


class PlaybookResult(_Result):
    kind: Literal["playbook"] = "playbook"
    notes: str = Field(min_length=1)
    decision: Decision | None = None


class ReviewDecision(StrEnum):
    approve = "approve"
    edit = "edit"
    reject = "reject"


class EmailReviewResult(_Result):
    """The manager's decision on a customer email held for review."""

    kind: Literal["email_review"] = "email_review"
    decision: ReviewDecision
    subject: str | None = Field(default=None, max_length=300)
    text: str | None = Field(default=None, max_length=20000, description="the edited text")

    @model_validator(mode="after")
    def _edit_has_text(self) -> EmailReviewResult:
        if self.decision is ReviewDecision.edit and not (self.text or "").strip():
            raise ValueError("an edit needs the new text")
        return self


TaskResult = Annotated[
    KickoffResult
    | ReviewCallResult
    | RenewalCheckpointResult
    | RenewalResult
    | PlaybookResult
    | EmailReviewResult,
    Field(discriminator="kind"),
]
RESULT_MODELS: dict[TaskKind, type[_Result]] = {
    TaskKind.kickoff: KickoffResult,
    TaskKind.review_call: ReviewCallResult,
    TaskKind.renewal_checkpoint: RenewalCheckpointResult,
    TaskKind.renewal: RenewalResult,
    TaskKind.playbook: PlaybookResult,
    TaskKind.email_review: EmailReviewResult,
}


class TaskCompletion(BaseModel):
    """What a rep or manager submits to finish a task. The result stays a plain mapping
    on the wire so that the lifecycle, not the caller's deserializer, says what is wrong."""

    task_id: str = Field(min_length=1)
    completed_by: str = Field(default="unknown", min_length=1)
    result: dict[str, Any]

    def update_id(self) -> str:
        """The same completion always gets the same update id: sent again after a
        timeout, it finds the first one's receipt instead of being refused as done.
        Temporal remembers update ids within one run; the lifecycle keeps the receipts
        by update id in its state, so a retry after a continue-as-new finds it too."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return f"complete:{self.task_id}:{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


class TaskReceipt(BaseModel):
    task_id: str
    kind: TaskKind
    completed_at: datetime
    completed_by: str


class InvalidTaskResult(ValueError):
    """A completion the lifecycle refuses; the message is meant for the person."""


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    """One line per problem, each naming the field path, e.g. `result.goals.0.target`."""
    lines = []
    for problem in error.errors():
        path = ".".join(str(p) for p in (prefix, *problem["loc"]) if p != "")
        # Our own validators' messages read better without pydantic's "Value error, ".
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{path or 'value'}: {message}")
    return "; ".join(lines)


def check_result(task: Task | None, completion: TaskCompletion, task_id: str) -> TaskResult:
    """Parse and check a completion against the task it names, or raise InvalidTaskResult."""
    if task is None:
        raise InvalidTaskResult(f"unknown task {task_id!r}")
    if task.status is not TaskStatus.open:
        raise InvalidTaskResult(f"task {task_id} is not open (it is {task.status.value})")
    raw = dict(completion.result)
    kind = raw.setdefault("kind", task.kind.value)
    if kind != task.kind.value:
        raise InvalidTaskResult(
            f"wrong kind: task {task_id} is a {task.kind.value} task, the result is for {kind!r}"
        )
    try:
        # The kind's own model, not the discriminated union: error paths then read
        # `result.success_plan`, without the union's tag in the middle.
        result: TaskResult = RESULT_MODELS[task.kind].model_validate(raw)  # type: ignore[assignment]
    except ValidationError as error:
        raise InvalidTaskResult(describe_validation_error(error, "result")) from None
    if isinstance(result, PlaybookResult) and task.requires_decision and result.decision is None:
        raise InvalidTaskResult(
            "result.decision: this playbook needs a decision: recover or let_go"
        )
    return result


def example_result(kind: TaskKind) -> dict[str, Any]:
    """A filled-in result per kind, for `tandem tasks example` and the docs."""
    plan = {
        "intended_use": "Track every deal our 12 reps work, from first call to signature",
        "success_definition": "Every rep logs their calls in Tandem CRM instead of spreadsheets",
        "goals": [
            {
                "key": "active_reps",
                "metric": "reps logging calls weekly",
                "unit": "reps",
                "baseline": 2,
                "target": 12,
                "direction": "increase",
                "target_date": "2027-06-30",
            }
        ],
        "objectives": ["Retire the shared sales spreadsheet"],
        "constraints": ["Roll out one sales team at a time"],
    }
    examples: dict[TaskKind, dict[str, Any]] = {
        TaskKind.kickoff: {"kind": "kickoff", "success_plan": plan, "notes": "Kickoff held"},
        TaskKind.review_call: {
            "kind": "review_call",
            "notes": "Two more teams live",
            "goal_progress": {"active_reps": 7},
            "next_steps": ["Train the EMEA team"],
        },
        TaskKind.renewal_checkpoint: {
            "kind": "renewal_checkpoint",
            "manager_rating": "happy_profitable",
            "notes": "Champion is positive",
        },
        TaskKind.renewal: {"kind": "renewal", "outcome": "renewed", "reason": "Goals met"},
        TaskKind.playbook: {"kind": "playbook", "notes": "Call held", "decision": "recover"},
        TaskKind.email_review: {"kind": "email_review", "decision": "approve"},
    }
    return examples[kind]
