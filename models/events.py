"""The events Tandem sends out (Standard Webhooks v1): their types and thin payloads.

Every event is `{"type", "timestamp", "data"}`. The data names things by id and name and
links to the dashboard; a receiver that wants more asks the API. The models here are
what docs/webhooks.md and the OpenAPI document (`webhooks`) describe, and what the
activities that record a change fill in.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field


class EventType(StrEnum):
    customer_signed_up = "customer.signed_up"
    customer_imported = "customer.imported"
    assessment_completed = "assessment.completed"
    quadrant_changed = "quadrant.changed"
    risk_flagged = "risk.flagged"
    task_opened = "task.opened"
    task_overdue = "task.overdue"
    task_escalated = "task.escalated"
    task_completed = "task.completed"
    renewal_opened = "renewal.opened"
    renewal_decided = "renewal.decided"
    customer_churned = "customer.churned"


# Sent by `tandem webhooks test` to one endpoint only, whatever its filter.
TEST_EVENT = "webhook.test"


class CustomerRef(BaseModel):
    id: str
    company: str
    owner: str | None = Field(default=None, description="the success manager's email")
    link: str = Field(description="the customer's page on the dashboard")


class TaskRef(BaseModel):
    id: str
    kind: str
    title: str
    owner_role: str
    owner: str | None = Field(default=None, description="the assignee, when a person")
    due_at: datetime
    link: str = Field(description="the task's page on the dashboard")


class CustomerEventData(BaseModel):
    customer: CustomerRef


class CustomerSignedUpData(CustomerEventData):
    plan: str


class CustomerImportedData(CustomerEventData):
    source: str = Field(description="what the customer was imported from, e.g. a CSV file")


class AssessmentData(CustomerEventData):
    assessed_at: datetime
    quadrant: str
    level: float | None
    customer_score: float | None
    company_score: float | None
    risks: list[str]


class QuadrantChangedData(CustomerEventData):
    previous_quadrant: str | None
    quadrant: str
    assessed_at: datetime


class RiskFlaggedData(CustomerEventData):
    quadrant: str
    risks: list[str] = Field(description="named risks; empty when the quadrant alone is unhappy")


class TaskEventData(CustomerEventData):
    task: TaskRef


class TaskCompletedData(TaskEventData):
    completed_by: str
    completed_at: datetime


class RenewalOpenedData(TaskEventData):
    term_end: datetime


class RenewalDecidedData(CustomerEventData):
    outcome: str = Field(description="renewed, expanded, downgraded or churned")
    reason: str
    decided_by: str


class CustomerChurnedData(CustomerEventData):
    reason: str


EVENT_DATA: dict[EventType, type[BaseModel]] = {
    EventType.customer_signed_up: CustomerSignedUpData,
    EventType.customer_imported: CustomerImportedData,
    EventType.assessment_completed: AssessmentData,
    EventType.quadrant_changed: QuadrantChangedData,
    EventType.risk_flagged: RiskFlaggedData,
    EventType.task_opened: TaskEventData,
    EventType.task_overdue: TaskEventData,
    EventType.task_escalated: TaskEventData,
    EventType.task_completed: TaskCompletedData,
    EventType.renewal_opened: RenewalOpenedData,
    EventType.renewal_decided: RenewalDecidedData,
    EventType.customer_churned: CustomerChurnedData,
}

EVENT_SUMMARIES: dict[EventType, str] = {
    EventType.customer_signed_up: "A customer signed up and their lifecycle started.",
    EventType.customer_imported: "A customer was imported from another system.",
    EventType.assessment_completed: "The account was scored: both axes, quadrant and risks.",
    EventType.quadrant_changed: "The account moved to another quadrant of the success quadrant.",
    EventType.risk_flagged: "The account became at risk (a named risk or an unhappy quadrant).",
    EventType.task_opened: "Work for a person was opened (kickoff, review call, playbook...).",
    EventType.task_overdue: "An open task passed its due date.",
    EventType.task_escalated: "An overdue task was escalated to the managers.",
    EventType.task_completed: "A task was completed with its result.",
    EventType.renewal_opened: "The renewal conversation opened (its task for the manager).",
    EventType.renewal_decided: "The renewal was decided: renewed, expanded, downgraded, churned.",
    EventType.customer_churned: "The lifecycle ended: churned at renewal or cancelled.",
}


def parse_event_types(names: list[str]) -> list[EventType]:
    """Event type names as given by a person; an unknown one is refused by name."""
    known = {t.value: t for t in EventType}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(
            f"unknown event type {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}"
        )
    return list(dict.fromkeys(known[name] for name in names))


class Event(BaseModel):
    """The envelope every delivery carries (Standard Webhooks)."""

    type: str
    timestamp: datetime
    data: dict[str, Any]


def envelope_model(event_type: EventType) -> type[BaseModel]:
    """The documented shape of one event type: its envelope with its own data model."""
    data_model = EVENT_DATA[event_type]
    name = "".join(part.title() for part in event_type.value.replace(".", "_").split("_"))
    annotations = {
        "type": Literal[event_type.value],  # type: ignore[valid-type]
        "timestamp": datetime,
        "data": data_model,
    }
    namespace = {
        "__annotations__": annotations,
        "__doc__": EVENT_SUMMARIES[event_type],
        "__module__": __name__,
    }
    return type(f"{name}Event", (BaseModel,), namespace)
