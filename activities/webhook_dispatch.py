"""The worker's dispatcher: from the event outbox to delivery workflows.

Events are written by activities in the transactions that record their changes; this
loop, beside the worker, makes each event's deliveries (one per subscribed endpoint)
and starts a `WebhookDelivery` workflow for each. The workflow id is the delivery's,
and a duplicate start is refused by Temporal, so two workers dispatching at once, or
a dispatcher that died between starting and marking, never deliver a round twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from db.webhooks import make_deliveries, mark_started, prune_events, unstarted_deliveries
from models.delivery import DeliveryOrder, DeliveryPolicy
from settings import Settings

log = logging.getLogger("tandem.webhooks")
# Old events are pruned at the dispatcher's first pass, then this often.
PRUNE_EVERY_SECONDS = 3600.0


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    return DeliveryPolicy(
        attempt_timeout=timedelta(seconds=settings.webhooks_attempt_timeout_seconds),
        first_retry=timedelta(seconds=settings.webhooks_first_retry_seconds),
        longest_retry=timedelta(seconds=settings.webhooks_longest_retry_seconds),
        give_up_after=timedelta(seconds=settings.webhooks_give_up_seconds),
    )


class Dispatcher:
    def __init__(self, client: Client, engine: Engine, settings: Settings, task_queue: str):
        self.client, self.engine, self.settings = client, engine, settings
        self.task_queue = task_queue
        self.pruned_at: float | None = None

    async def run(self) -> None:
        while True:
            try:
                await self.prune()
                await self.dispatch()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database or Temporal away for a moment: try again
                log.exception("webhook dispatch failed; retrying")
            await asyncio.sleep(self.settings.webhooks_dispatch_seconds)

    async def prune(self) -> int:
        """Drop delivered events older than the retention, at most once an hour."""
        if self.pruned_at is not None and time.monotonic() - self.pruned_at < PRUNE_EVERY_SECONDS:
            return 0
        self.pruned_at = time.monotonic()
        days = self.settings.webhooks_retention_days
        pruned = await asyncio.to_thread(prune_events, self.engine, days)
        if pruned:
            log.info("pruned %d webhook events older than %d days", pruned, days)
        return pruned

    async def dispatch(self) -> int:
        """Make the waiting events' deliveries and start them; how many were started."""
        public_url = self.settings.public_url
        while await asyncio.to_thread(make_deliveries, self.engine, public_url):
            pass
        started = 0
        for delivery_id, workflow_id in await asyncio.to_thread(unstarted_deliveries, self.engine):
            await self.start(delivery_id, workflow_id)
            await asyncio.to_thread(mark_started, self.engine, delivery_id)
            started += 1
        return started

    async def start(self, delivery_id: int, workflow_id: str) -> None:
        order = DeliveryOrder(
            delivery_id=delivery_id,
            workflow_id=workflow_id,
            policy=delivery_policy(self.settings),
        )
        # Started already by another dispatcher, or by this one before a crash: fine.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self.client.start_workflow(
                "WebhookDelivery",
                order,
                id=workflow_id,
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
