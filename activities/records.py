"""Activities that keep the records: customers, tasks, results, success plans, timeline.

Every write is idempotent (upsert by id, or insert-once by a unique key), because
Temporal retries an activity until it succeeds and a retry must not write twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio import activity

from activities import events
from activities.contracts import (
    AccountImport,
    CustomerPlanRecord,
    LifecycleSnapshot,
    TaskResultRecord,
    TaskUpdate,
    TimelineEntry,
)
from db.assignment import assignee_for, manager_for_new_account
from db.contacts import upsert_contact
from db.engine import insert_once, write_once
from db.ingest import record_in
from models.lifecycle import Phase
from models.signals import SignalIn, SignalKind
from models.success_plan import SuccessPlan
from models.tables import (
    AuditEntry,
    Customer,
    GoalRecord,
    SignalRecord,
    SuccessPlanRecord,
    TaskRecord,
    TimelineEvent,
    utcnow,
)
from models.tasks import ReviewCallResult, Task, TaskKind, TaskStatus


def add_event_once(session: Session, entry: TimelineEntry) -> None:
    insert_once(session, TimelineEvent, entry.model_dump())


def save_success_plan(
    session: Session, customer_id: str, version: int, plan: SuccessPlan, author: str, at: Any
) -> None:
    exists = session.exec(
        select(SuccessPlanRecord.id).where(
            SuccessPlanRecord.customer_id == customer_id, SuccessPlanRecord.version == version
        )
    ).first()
    if exists is not None:
        return
    record = SuccessPlanRecord(
        customer_id=customer_id,
        version=version,
        author=author,
        intended_use=plan.intended_use,
        success_definition=plan.success_definition,
        objectives=plan.objectives,
        constraints=plan.constraints,
        created_at=at,
    )
    session.add(record)
    session.flush()
    assert record.id is not None
    for goal in plan.goals:
        session.add(GoalRecord(plan_id=record.id, customer_id=customer_id, **goal.model_dump()))


def save_customer_words(session: Session, record: CustomerPlanRecord) -> None:
    exists = session.exec(
        select(SuccessPlanRecord.id).where(
            SuccessPlanRecord.customer_id == record.customer_id,
            SuccessPlanRecord.version == record.version,
        )
    ).first()
    if exists is None:
        edit = record.edit
        session.add(
            SuccessPlanRecord(
                customer_id=record.customer_id,
                version=record.version,
                author=edit.author,
                source="customer",
                intended_use=edit.intended_use,
                success_definition=edit.success_definition,
                objectives=edit.objectives,
                constraints=edit.constraints,
                created_at=record.at,
            )
        )
        session.add(
            AuditEntry(
                at=record.at,
                actor=edit.author,
                action="success_plan.customer_edit",
                subject=record.customer_id,
                detail={"version": record.version, **edit.model_dump()},
            )
        )
        add_event_once(
            session,
            TimelineEntry(
                customer_id=record.customer_id,
                key=f"customer_plan:v{record.version}",
                at=record.at,
                kind="customer_plan",
                message=f"The customer described success in their own words (v{record.version})",
            ),
        )


def save_lifecycle(
    session: Session,
    snapshot: LifecycleSnapshot,
    opening: bool = False,
    imported_from: str | None = None,
) -> Customer:
    """The customer's row as the lifecycle sees it (created at sign-up). When `opening`
    a term, a row already there for that term is left alone: the opening is being
    retried, and the row may hold what the lifecycle recorded since."""
    profile = snapshot.customer
    row = session.get(Customer, profile.customer_id)
    this_term = (snapshot.term, snapshot.term_start)
    if opening and row is not None and (row.term, row.term_start) == this_term:
        return row
    was = row.phase if row is not None else None
    if row is None or (opening and was == Phase.churned.value):
        # A new account (or one signing up again) gets its manager here, in the records;
        # after that only a reassignment moves it, never a snapshot.
        row = row or Customer(id=profile.customer_id)
        row.owner = manager_for_new_account(session, profile.owner)
    copy_snapshot(row, snapshot)
    session.add(row)
    ended = snapshot.phase is Phase.churned
    if not ended and (was is None or (was == Phase.churned.value and snapshot.term == 1)):
        if imported_from is not None:
            events.imported(session, row, imported_from)
        else:
            events.signed_up(session, row)
    elif ended and was != Phase.churned.value:
        events.churned(session, row, snapshot.churn_reason or "")
    return row


def new_customer(session: Session, snapshot: LifecycleSnapshot) -> Customer:
    """The row of a customer new to the records, with the manager the account gets."""
    profile = snapshot.customer
    row = Customer(id=profile.customer_id)
    row.owner = manager_for_new_account(session, profile.owner)
    copy_snapshot(row, snapshot)
    return row


def copy_snapshot(row: Customer, snapshot: LifecycleSnapshot) -> None:
    profile = snapshot.customer
    row.company, row.contact_name, row.email = profile.company, profile.contact_name, profile.email
    row.external_id = profile.external_id
    row.plan_name, row.plan_version = snapshot.plan_name, snapshot.plan_version
    row.phase, row.term, row.onboarded = snapshot.phase.value, snapshot.term, snapshot.onboarded
    row.term_start, row.term_end = snapshot.term_start, snapshot.term_end
    # Only the last snapshot of an ended lifecycle has one; a customer who signs up
    # again starts without the old reason.
    row.churn_reason = snapshot.churn_reason
    row.updated_at = utcnow()


def save_task(session: Session, update: TaskUpdate) -> TaskRecord:
    """The task's row as the lifecycle sees it, and the timeline entry for the change."""
    task = update.task
    row = session.get(TaskRecord, task.task_id)
    if row is None:
        row = new_task(task, session.get(Customer, task.customer_id))
    # A completed row is final: a late reminder write must not reopen it.
    if row.status != TaskStatus.done.value:
        row.status = task.status.value
    row.playbook, row.email_key = task.playbook, task.email_key
    row.reminded, row.escalated = task.reminded, task.escalated
    session.add(row)
    add_event_once(session, update.event)
    if (customer := session.get(Customer, task.customer_id)) is not None:
        events.task_changed(session, customer, row, update.event.kind)
    return row


def new_task(task: Task, customer: Customer | None) -> TaskRecord:
    """A task's first row: assigned once, from the account as it stands now (a
    reassignment moves it later)."""
    return TaskRecord(
        id=task.task_id,
        customer_id=task.customer_id,
        kind=task.kind.value,
        title=task.title,
        owner_role=task.owner_role.value,
        assignee=assignee_for(customer, task.owner_role.value),
        status=task.status.value,
        due_at=task.due_at,
        created_at=task.created_at,
        playbook=task.playbook,
        email_key=task.email_key,
        reminded=task.reminded,
        escalated=task.escalated,
    )


class RecordActivities:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @activity.defn(name="record_lifecycle")
    def record_lifecycle(self, snapshot: LifecycleSnapshot) -> None:
        write_once(self.engine, lambda session: save_lifecycle(session, snapshot))

    @activity.defn(name="import_account")
    def import_account(self, opening: AccountImport) -> None:
        """An existing account's record, timeline entry, contacts and MRR, in one
        transaction; a retry finds it all there."""
        account = opening.account

        def work(session: Session) -> None:
            customer = save_lifecycle(
                session, opening.snapshot, opening=True, imported_from=account.source
            )
            add_event_once(session, opening.entry)
            session.flush()  # the account's row before its contacts'
            for contact in account.contacts:
                roles = contact.roles or ["user"]
                upsert_contact(session, customer.id, contact.name, contact.email, roles, "import")
            if account.mrr is not None:
                mrr = SignalIn(
                    customer_id=customer.id,
                    kind=SignalKind.mrr,
                    value=account.mrr,
                    observed_at=opening.entry.at,
                    source="import",
                    client_id=f"import:{opening.entry.key}",
                )
                record_in(session, [mrr])

        write_once(self.engine, work)

    @activity.defn(name="record_event")
    def record_event(self, entry: TimelineEntry) -> None:
        write_once(self.engine, lambda session: add_event_once(session, entry))

    @activity.defn(name="record_customer_plan")
    def record_customer_plan(self, record: CustomerPlanRecord) -> None:
        write_once(self.engine, lambda session: save_customer_words(session, record))

    @activity.defn(name="record_task")
    def record_task(self, update: TaskUpdate) -> None:
        write_once(self.engine, lambda session: save_task(session, update))

    @activity.defn(name="record_task_result")
    def record_task_result(self, record: TaskResultRecord) -> None:
        def work(session: Session) -> None:
            task = record.task
            row = session.get(TaskRecord, task.task_id)
            if row is None:
                raise LookupError(f"task {task.task_id} was never recorded")
            if row.completed_at is not None:  # a retry after the commit: all written already
                return
            row.status = TaskStatus.done.value
            row.completed_at, row.completed_by = record.completed_at, record.completed_by
            row.result = record.result
            session.add(row)
            self._apply_result(session, record)
            session.add(
                AuditEntry(
                    at=record.completed_at,
                    actor=record.completed_by,
                    action="task.completed",
                    subject=task.task_id,
                    detail={"kind": task.kind.value, "result": record.result},
                )
            )
            if (customer := session.get(Customer, task.customer_id)) is not None:
                by, at = record.completed_by, record.completed_at
                events.task_completed(session, customer, row, by, at)
            message = f"{task.title}: completed by {record.completed_by}"
            add_event_once(
                session,
                TimelineEntry(
                    customer_id=task.customer_id,
                    key=f"{task.task_id}:completed",
                    at=record.completed_at,
                    kind="task_completed",
                    message=message,
                ),
            )

        write_once(self.engine, work)

    @staticmethod
    def _apply_result(session: Session, record: TaskResultRecord) -> None:
        """What a result changes beyond its task: plans, goal measurements, renewal."""
        task, result = record.task, record.result
        plan_data = result.get("success_plan") or result.get("revised_plan")
        if plan_data is not None and record.success_plan_version is not None:
            save_success_plan(
                session,
                task.customer_id,
                record.success_plan_version,
                SuccessPlan.model_validate(plan_data),
                record.completed_by,
                record.completed_at,
            )
        if task.kind is TaskKind.review_call:
            measured = ReviewCallResult.model_validate(result).goal_progress
            for goal_key, value in measured.items():
                client_id = f"{task.task_id}:{goal_key}"
                exists = session.exec(
                    select(SignalRecord.id).where(
                        SignalRecord.customer_id == task.customer_id,
                        SignalRecord.client_id == client_id,
                    )
                ).first()
                if exists is None:
                    session.add(
                        SignalRecord(
                            customer_id=task.customer_id,
                            kind=SignalKind.goal.value,
                            value=value,
                            goal_key=goal_key,
                            observed_at=record.completed_at,
                            source=f"review_call:{record.completed_by}",
                            client_id=client_id,
                        )
                    )
        if task.kind is TaskKind.renewal:
            customer = session.get(Customer, task.customer_id)
            if customer is not None:
                customer.renewal_outcome = result["outcome"]
                session.add(customer)
