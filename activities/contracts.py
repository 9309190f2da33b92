"""The activities a lifecycle calls: one typed input per activity, and a stub per name.

Workflows import this module only, never the implementations, so the workflow sandbox
never loads SQLAlchemy or SMTP code. The worker registers the implementations in
`activities.records`, `activities.accounts`, `activities.email` and
`activities.assessment` under these names.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity

from models.customer import CustomerProfile
from models.imports import ImportedAccount
from models.lifecycle import Phase
from models.plan import ScoringSettings
from models.scoring import Assessment, PreviousAssessment
from models.success_plan import CustomerPlanEdit
from models.tasks import Task


class LifecycleSnapshot(BaseModel):
    """The customer's row as the lifecycle sees it now."""

    customer: CustomerProfile
    plan_name: str
    plan_version: int
    phase: Phase
    term: int
    term_start: datetime
    term_end: datetime
    onboarded: bool
    churn_reason: str | None = None


class TimelineEntry(BaseModel):
    customer_id: str
    key: str = Field(description="unique per customer: a retried activity writes it once")
    at: datetime
    kind: str
    message: str


class TaskUpdate(BaseModel):
    task: Task
    event: TimelineEntry


class TaskResultRecord(BaseModel):
    task: Task
    result: dict[str, Any]
    completed_by: str
    completed_at: datetime
    success_plan_version: int | None = Field(
        default=None, description="set when the result carries a (revised) success plan"
    )


class Recipient(StrEnum):
    customer = "customer"
    rep = "rep"
    manager = "manager"


class EmailRequest(BaseModel):
    key: str = Field(description="idempotency key: one email per lifecycle step")
    template: str
    customer_id: str
    to: Recipient
    assignee: str | None = Field(default=None, description="a person's address, for staff mail")
    context: dict[str, Any] = Field(default_factory=dict, description="small values only")
    held: bool = Field(default=False, description="kept in the outbox until a manager decides")


class EmailReceipt(BaseModel):
    key: str
    subject: str
    to_address: str
    already_delivered: bool = Field(
        description="nothing left to deliver: a retried step finds it sent already, or "
        "it is kept back because the customer unsubscribed"
    )


class EmailRevision(BaseModel):
    """A reviewed email: send as edited, or drop."""

    key: str
    drop: bool = False
    subject: str | None = None
    text: str | None = None


class TaskNotice(BaseModel):
    """A task opened, or due soon, or overdue: its record and the email that tells its
    owner, stored in one step."""

    update: TaskUpdate
    notice: EmailRequest


class AccountOpening(BaseModel):
    """Sign-up in one step: the customer's record and timeline entry, the welcome, and
    the kickoff task with its notice to the success manager."""

    snapshot: LifecycleSnapshot
    entry: TimelineEntry
    welcome: EmailRequest
    kickoff: TaskNotice


class AccountImport(BaseModel):
    """An existing account's opening: its record, timeline entry, contacts and MRR; no
    email goes out."""

    snapshot: LifecycleSnapshot
    entry: TimelineEntry
    account: ImportedAccount


class AccountOpened(BaseModel):
    welcome: EmailReceipt
    kickoff_notice: EmailReceipt


class CustomerPlanRecord(BaseModel):
    customer_id: str
    version: int
    edit: CustomerPlanEdit
    at: datetime


class AssessmentRequest(BaseModel):
    customer_id: str
    key: str = Field(description="unique per customer: a retried activity scores once")
    as_of: datetime
    scoring: ScoringSettings
    previous: PreviousAssessment | None = None


class CheckIn(BaseModel):
    """A check-in in one step: the assessment, and the report that tells the customer
    where they stand (it shows the assessment stored with it)."""

    assessment: AssessmentRequest
    report: EmailRequest


class CheckedIn(BaseModel):
    assessment: Assessment
    report: EmailReceipt


@activity.defn(name="import_account")
def import_account(opening: AccountImport) -> None:
    raise NotImplementedError("registered by the worker from activities.records")


@activity.defn(name="record_lifecycle")
def record_lifecycle(snapshot: LifecycleSnapshot) -> None:
    raise NotImplementedError("registered by the worker from activities.records")


@activity.defn(name="record_event")
def record_event(entry: TimelineEntry) -> None:
    raise NotImplementedError("registered by the worker from activities.records")


@activity.defn(name="record_task")
def record_task(update: TaskUpdate) -> None:
    raise NotImplementedError("registered by the worker from activities.records")


@activity.defn(name="record_task_result")
def record_task_result(record: TaskResultRecord) -> None:
    raise NotImplementedError("registered by the worker from activities.records")


@activity.defn(name="record_customer_plan")
def record_customer_plan(record: CustomerPlanRecord) -> None:
    raise NotImplementedError("registered by the worker from activities.records")


@activity.defn(name="revise_email")
def revise_email(revision: EmailRevision) -> None:
    raise NotImplementedError("registered by the worker from activities.email")


@activity.defn(name="compose_email")
def compose_email(request: EmailRequest) -> EmailReceipt:
    raise NotImplementedError("registered by the worker from activities.email")


@activity.defn(name="open_account")
def open_account(opening: AccountOpening) -> AccountOpened:
    raise NotImplementedError("registered by the worker from activities.accounts")


@activity.defn(name="announce_task")
def announce_task(announcement: TaskNotice) -> EmailReceipt:
    raise NotImplementedError("registered by the worker from activities.accounts")


@activity.defn(name="deliver_email")
def deliver_email(key: str) -> None:
    raise NotImplementedError("registered by the worker from activities.email")


@activity.defn(name="assess_account")
def assess_account(request: AssessmentRequest) -> Assessment:
    raise NotImplementedError("registered by the worker from activities.assessment")


@activity.defn(name="check_in")
def check_in(check_in: CheckIn) -> CheckedIn:
    raise NotImplementedError("registered by the worker from activities.accounts")
