"""How the lifecycle calls its activities: one place for timeouts and retry policies."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities import contracts
    from activities.contracts import EmailRequest, Recipient, TimelineEntry

# Records must not be lost: retry until the database is back, backing off to a minute.
RECORDS = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
# An SMTP outage is retried for up to three days, backing off to half an hour.
DELIVERY = RetryPolicy(
    initial_interval=timedelta(seconds=10),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=30),
)
DELIVERY_WINDOW = timedelta(days=3)


async def wait_for(condition: Callable[[], bool], deadline: datetime) -> bool:
    """Wait until the condition holds (True) or the deadline passes (False), on a
    durable timer: a restarted worker waits only for what is left."""
    remaining = deadline - workflow.now()
    if remaining > timedelta(0):
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(condition, timeout=remaining)
    return condition()


async def record(activity: Any, payload: Any) -> Any:
    """Run a records activity (database write or read) until it succeeds."""
    return await workflow.execute_activity(
        activity, payload, start_to_close_timeout=timedelta(seconds=30), retry_policy=RECORDS
    )


async def event(customer_id: str, key: str, kind: str, message: str) -> None:
    entry = TimelineEntry(
        customer_id=customer_id, key=key, at=workflow.now(), kind=kind, message=message
    )
    await record(contracts.record_event, entry)


class Mailroom:
    """Composes each email in the lifecycle's own step (so it is persisted before the
    step counts as done) and delivers it in the background, so a failing mail server
    slows nothing and kills nothing."""

    def __init__(self) -> None:
        self._deliveries: set[asyncio.Task[None]] = set()

    async def send(
        self,
        key: str,
        template: str,
        customer_id: str,
        to: Recipient,
        assignee: str | None = None,
        **context: Any,
    ) -> None:
        request = EmailRequest(
            key=key,
            template=template,
            customer_id=customer_id,
            to=to,
            assignee=assignee,
            context=context,
        )
        receipt = await record(contracts.compose_email, request)
        if receipt.already_delivered:
            return
        delivery = asyncio.create_task(self._deliver(customer_id, key))
        self._deliveries.add(delivery)
        delivery.add_done_callback(self._deliveries.discard)

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
