"""How the lifecycle calls its activities: one place for timeouts and retry policies."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

with workflow.unsafe.imports_passed_through():
    from activities import contracts
    from activities.contracts import (
        EmailReceipt,
        EmailRequest,
        EmailRevision,
        Recipient,
        TaskNotice,
        TimelineEntry,
    )
    from models.lifecycle import LifecycleState
    from models.roles import Role
    from models.tasks import (
        EmailReviewResult,
        NewTask,
        ReviewDecision,
        Task,
        TaskKey,
        TaskKind,
        TaskStatus,
    )

# Records must not be lost: retry until the database is back, backing off to a minute.
RECORDS = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
# An SMTP outage is retried for up to three days, backing off to half an hour.
DELIVERY = RetryPolicy(
    initial_interval=timedelta(seconds=10),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=30),
)
DELIVERY_WINDOW = timedelta(days=3)
# Composing stores an email, then tries one delivery (about a dozen SMTP round trips of
# at most activities.email.INLINE_SMTP_TIMEOUT each): the attempt must not time out
# mid-send, or its retry would send again, so the timeout leaves room for a slow relay.
# Run as a local activity (in_this_task) it cannot heartbeat: a lost worker is noticed
# by its workflow task's timeout. The regular activity that takes over after its quick
# tries heartbeats between round trips, so a lost worker is noticed within
# COMPOSE_HEARTBEAT.
COMPOSE_TIMEOUT = timedelta(minutes=2)
COMPOSE_HEARTBEAT = timedelta(seconds=20)
# A local activity's few quick tries, before a regular activity takes over.
QUICK_TRIES = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
# A local activity's failure reaches the workflow as its own error or a timeout, not
# wrapped in an ActivityError as a regular activity's is (temporalio 1.35, seen in
# tests/test_reviews_and_mail.py).
LOCAL_ACTIVITY_FAILED = (ActivityError, ApplicationError, TemporalTimeoutError)


async def wait_for(condition: Callable[[], bool], deadline: datetime) -> bool:
    """Wait until the condition holds (True) or the deadline passes (False), on a
    durable timer: a restarted worker waits only for what is left."""
    remaining = deadline - workflow.now()
    if remaining > timedelta(0):
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(condition, timeout=remaining)
    return condition()


async def record(activity: Any, payload: Any, timeout: timedelta = timedelta(seconds=30)) -> Any:
    """Run a records activity (database write or read) until it succeeds. A record is a
    few statements: it runs in this workflow task (in_this_task), so a step that writes
    several records costs one workflow task, not one task and one activity task each.
    Records do not heartbeat, so the regular activity behind it waits on no heartbeat."""
    return await in_this_task(activity, payload, timeout, heartbeat=None)


async def store_and_send(activity: Any, payload: Any, emails: int = 1) -> Any:
    """Run an activity that stores and tries to send `emails` emails, until it succeeds:
    in this workflow task too (a check-in's assessment and its report in one task)."""
    return await in_this_task(activity, payload, COMPOSE_TIMEOUT * emails)


async def in_this_task(
    activity: Any,
    payload: Any,
    timeout: timedelta,
    heartbeat: timedelta | None = COMPOSE_HEARTBEAT,
) -> Any:
    """Run an activity in the current workflow task, as a local activity: no activity
    task to schedule, match and report through the server (sign-up's caller waits on
    it). A worker lost meanwhile is noticed by that task's timeout, and the next worker
    runs it again. When its few quick tries fail (the records database down, say), a
    regular activity takes over: the server retries it for as long as it takes, where a
    local activity's retries would add to the lifecycle's history every minute."""
    try:
        return await workflow.execute_local_activity(
            activity, payload, start_to_close_timeout=timeout, retry_policy=QUICK_TRIES
        )
    except LOCAL_ACTIVITY_FAILED:
        return await workflow.execute_activity(
            activity,
            payload,
            start_to_close_timeout=timeout,
            heartbeat_timeout=heartbeat,
            retry_policy=RECORDS,
        )


def timeline_entry(customer_id: str, key: str, kind: str, message: str) -> TimelineEntry:
    return TimelineEntry(
        customer_id=customer_id, key=key, at=workflow.now(), kind=kind, message=message
    )


async def event(customer_id: str, key: str, kind: str, message: str) -> None:
    await record(contracts.record_event, timeline_entry(customer_id, key, kind, message))


class Reviews(Protocol):
    """What the mailroom asks of the task desk: a manager's review task, opened and
    closed. The desk itself sends its notices through the mailroom, so the lifecycle
    wires the two in two steps (workflows/lifecycle.py)."""

    async def open(self, new: NewTask) -> Task: ...

    async def close(self, task: Task, reason: str) -> None: ...


class Mailroom:
    """Composes each email in the lifecycle's own step (so it is persisted before the
    step counts as done; composing also tries one delivery at once), and delivers what
    is left in the background, retrying for days, so a failing mail server kills
    nothing. Under a plan with email review, customer emails first wait for the
    account's manager (an email_review task) or the deadline."""

    def __init__(self, state: LifecycleState) -> None:
        self._state = state
        self._deliveries: set[asyncio.Task[None]] = set()
        self.desk: Reviews | None = None  # set by the lifecycle, once the desk exists
        self.decisions: dict[str, EmailReviewResult] = {}

    def request(
        self,
        key: str,
        template: str,
        customer_id: str,
        to: Recipient,
        assignee: str | None = None,
        **context: Any,
    ) -> EmailRequest:
        held = to is Recipient.customer and self._state.plan.email_review.enabled
        return EmailRequest(
            key=key,
            template=template,
            customer_id=customer_id,
            to=to,
            assignee=assignee,
            context=context,
            held=held,
        )

    async def send(
        self,
        key: str,
        template: str,
        customer_id: str,
        to: Recipient,
        assignee: str | None = None,
        **context: Any,
    ) -> None:
        await self.compose(self.request(key, template, customer_id, to, assignee, **context))

    async def compose(self, request: EmailRequest) -> None:
        self.follow(request, await store_and_send(contracts.compose_email, request))

    async def announce_task(self, announcement: TaskNotice) -> None:
        """A task's record and its owner's notice in one activity."""
        receipt = await store_and_send(contracts.announce_task, announcement)
        self.follow(announcement.notice, receipt)

    def follow(self, request: EmailRequest, receipt: EmailReceipt) -> None:
        """Deliver in the background what composing could not send: after a manager's
        review when the email is held, else at once, retrying for days."""
        if receipt.already_delivered:
            return
        customer_id = request.customer_id
        if request.held:
            work = self._review_then_deliver(customer_id, receipt)
        else:
            work = self._deliver(customer_id, request.key)
        delivery = asyncio.create_task(work)
        self._deliveries.add(delivery)
        delivery.add_done_callback(self._deliveries.discard)

    async def _review_then_deliver(self, customer_id: str, receipt: EmailReceipt) -> None:
        assert self.desk is not None
        settings = self._state.plan.email_review
        task = await self.desk.open(
            NewTask(
                f"email_review-{TaskKey.parse(receipt.key).local}",
                TaskKind.email_review,
                f"Review before it goes to the customer: {receipt.subject}",
                Role.manager,
                due_in=timedelta(hours=settings.deadline_hours),
                email_key=receipt.key,
            )
        )
        # The decision, not the task's status: a completed task's result is recorded
        # before the lifecycle hands the decision over.
        decided = await wait_for(
            lambda: receipt.key in self.decisions or task.status is TaskStatus.cancelled,
            task.due_at,
        )
        decision = self.decisions.pop(receipt.key, None)
        if not decided:
            send = settings.on_deadline == "send"
            why = "deadline passed, sent as written" if send else "deadline passed, dropped"
            await self.desk.close(task, why)
            if send:
                await self._deliver(customer_id, receipt.key)
                return
        elif decision is not None and decision.decision is not ReviewDecision.reject:
            if decision.decision is ReviewDecision.edit:
                revision = EmailRevision(
                    key=receipt.key, subject=decision.subject, text=decision.text
                )
                await record(contracts.revise_email, revision)
            await self._deliver(customer_id, receipt.key)
            return
        await record(contracts.revise_email, EmailRevision(key=receipt.key, drop=True))

    async def _deliver(self, customer_id: str, key: str) -> None:
        try:
            await workflow.execute_activity(
                contracts.deliver_email,
                key,
                start_to_close_timeout=timedelta(minutes=1),
                schedule_to_close_timeout=DELIVERY_WINDOW,
                retry_policy=DELIVERY,
            )
        except ActivityError as error:
            await event(
                customer_id,
                f"{key}:undelivered",
                "email_failed",
                f"email {key} could not be delivered: {error.cause or error}",
            )

    async def drain(self) -> None:
        """Wait for deliveries under way, before the run ends or continues as new."""
        while self._deliveries:
            await asyncio.gather(*list(self._deliveries))
