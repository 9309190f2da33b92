"""The events the record-keeping activities put in the webhook outbox, in the same
transaction as the change each one reports (db/webhooks.py, `record_event`).

Each takes the rows the activity has just written, so the event says what the records
say. Keys name the change; a retried activity records each event once.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from sqlmodel import Session

from db.webhooks import record_event
from models.events import (
    AssessmentData,
    CustomerChurnedData,
    CustomerImportedData,
    CustomerRef,
    CustomerSignedUpData,
    EventType,
    QuadrantChangedData,
    RenewalDecidedData,
    RenewalOpenedData,
    RiskFlaggedData,
    TaskCompletedData,
    TaskEventData,
    TaskRef,
)
from models.tables import AssessmentRecord, Customer, TaskRecord
from models.tasks import TaskKind

# The timeline kinds of a task's changes that are events too.
TASK_EVENTS = {
    "task_opened": EventType.task_opened,
    "task_overdue": EventType.task_overdue,
    "task_escalated": EventType.task_escalated,
}


def customer_ref(customer: Customer) -> CustomerRef:
    return CustomerRef(
        id=customer.id,
        company=customer.company,
        owner=customer.owner,
        link=f"/app/customers/{quote(customer.id, safe='')}",
    )


def task_ref(task: TaskRecord) -> TaskRef:
    return TaskRef(
        id=task.id,
        kind=task.kind,
        title=task.title,
        owner_role=task.owner_role,
        owner=task.assignee,
        due_at=task.due_at,
        link=f"/app/tasks/{quote(task.id, safe=':')}",
    )


def signed_up(session: Session, customer: Customer) -> None:
    data = CustomerSignedUpData(customer=customer_ref(customer), plan=customer.plan_name)
    record_event(
        session, EventType.customer_signed_up, data, f"{customer.id}:{customer.term_start}"
    )


def imported(session: Session, customer: Customer, source: str) -> None:
    data = CustomerImportedData(customer=customer_ref(customer), source=source)
    record_event(session, EventType.customer_imported, data, f"{customer.id}:{customer.term_start}")


def churned(session: Session, customer: Customer, reason: str) -> None:
    data = CustomerChurnedData(customer=customer_ref(customer), reason=reason)
    record_event(session, EventType.customer_churned, data, f"{customer.id}:t{customer.term}")


def task_changed(session: Session, customer: Customer, task: TaskRecord, kind: str) -> None:
    """A task opened, overdue or escalated (its timeline kind), and a renewal opened."""
    event_type = TASK_EVENTS.get(kind)
    if event_type is None:
        return
    data = TaskEventData(customer=customer_ref(customer), task=task_ref(task))
    record_event(session, event_type, data, task.id)
    if event_type is EventType.task_opened and task.kind == TaskKind.renewal.value:
        renewal = RenewalOpenedData(**data.model_dump(), term_end=customer.term_end)
        record_event(session, EventType.renewal_opened, renewal, task.id)


def task_completed(
    session: Session, customer: Customer, task: TaskRecord, by: str, at: datetime
) -> None:
    ref = customer_ref(customer)
    data = TaskCompletedData(customer=ref, task=task_ref(task), completed_by=by, completed_at=at)
    record_event(session, EventType.task_completed, data, task.id)
    if task.kind == TaskKind.renewal.value and task.result:
        decided = RenewalDecidedData(
            customer=ref,
            outcome=str(task.result.get("outcome")),
            reason=str(task.result.get("reason", "")),
            decided_by=by,
        )
        record_event(session, EventType.renewal_decided, decided, task.id)


def assessed(
    session: Session, customer: Customer, record: AssessmentRecord, latest: bool, was_at_risk: bool
) -> None:
    """The assessment; and, when it is the account's latest, a move between quadrants
    and the account becoming at risk."""
    ref = customer_ref(customer)
    key = f"{customer.id}:{record.key}"
    risks = list(record.detail.get("risks") or [])
    data = AssessmentData(
        customer=ref,
        assessed_at=record.assessed_at,
        quadrant=record.quadrant,
        level=record.level,
        customer_score=record.customer_score,
        company_score=record.company_score,
        risks=risks,
    )
    record_event(session, EventType.assessment_completed, data, key)
    if not latest:
        return
    if (customer.previous_quadrant or "unknown") != customer.quadrant:
        moved = QuadrantChangedData(
            customer=ref,
            previous_quadrant=customer.previous_quadrant,
            quadrant=customer.quadrant,
            assessed_at=record.assessed_at,
        )
        record_event(session, EventType.quadrant_changed, moved, key)
    if customer.at_risk and not was_at_risk:
        flagged = RiskFlaggedData(customer=ref, quadrant=customer.quadrant, risks=risks)
        record_event(session, EventType.risk_flagged, flagged, key)
