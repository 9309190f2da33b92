"""The Temporal worker: registers the lifecycle workflow and every activity."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import (
    PollerBehaviorAutoscaling,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.accounts import AccountActivities
from activities.assessment import AssessmentActivities
from activities.digests import DigestActivities
from activities.email import EmailActivities
from activities.records import RecordActivities
from activities.webhook_dispatch import Dispatcher
from activities.webhooks import WebhookActivities
from lifecycles import tell_champion_left
from settings import Settings
from workflows.delivery import WebhookDeliveryWorkflow
from workflows.digest import ManagerDigests, ensure_digest_schedule
from workflows.lifecycle import SEARCH_ATTRIBUTES, CustomerLifecycle

log = logging.getLogger("tandem.worker")

# Pydantic validators in the payloads call these lazily; they are pure, so the sandbox
# may share them rather than re-import them into every workflow run.
PURE_LIBRARIES = ("email_validator", "idna")
# The strict sandbox: every module of ours that a workflow imports is imported afresh
# into each workflow run, and a non-deterministic call (a clock, randomness, I/O) in
# any of them fails the workflow task. The in-process workflow tests run lifecycles in
# it, and TANDEM_WORKFLOW_SANDBOX=true runs production in it too.
STRICT_SANDBOX = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(*PURE_LIBRARIES)
)
# By default the worker runs lifecycles without a sandbox: creating one for each new
# lifecycle and crossing into it on every activation costs about a quarter of the
# worker's CPU per sign-up (docs/design.md, "Workers and scale"). The code that
# runs there is ours and fixed, and its determinism is checked before it ships: by the
# strict sandbox in tests and by replaying recorded histories (tests/test_replay.py).
# The price: a non-deterministic call on a path no test takes is not refused at run time.
UNSANDBOXED = UnsandboxedWorkflowRunner()


def workflow_runner(settings: Settings) -> WorkflowRunner:
    return STRICT_SANDBOX if settings.workflow_sandbox else UNSANDBOXED


# Activities are synchronous (SQLAlchemy, smtplib): they run on threads, ACTIVITY_THREADS
# at a time, and local activities (sign-up's) on threads of their own. Sharing one set
# would let sign-ups waiting on a slow relay hold up activities whose timeouts the
# server is already counting (retried, they would run twice). A worker is one process:
# to use more cores, start more workers on the same task queue (`tandem worker` again,
# or `tandem run --workers N`).
ACTIVITY_THREADS = 16
LOCAL_ACTIVITY_SLOTS = 16
# Pollers scale with the work waiting (Temporal's poller autoscaling; server 1.28 and
# newer). With the SDK's fixed five, about one polls for new lifecycles' first
# workflow tasks: in a burst of sign-ups the rest waited in the server's backlog, and
# one in ten took well over a second longer than the median.
POLLERS = PollerBehaviorAutoscaling()


def worker_options() -> dict[str, Any]:
    """The worker's slots and pollers; the benchmarks' bare worker uses them too."""
    return {
        "activity_executor": ThreadPoolExecutor(ACTIVITY_THREADS + LOCAL_ACTIVITY_SLOTS),
        "max_concurrent_activities": ACTIVITY_THREADS,
        "max_concurrent_local_activities": LOCAL_ACTIVITY_SLOTS,
        "workflow_task_poller_behavior": POLLERS,
        "activity_task_poller_behavior": POLLERS,
    }


class TandemWorker(Worker):
    """The worker, with the webhook dispatcher beside it: the events its activities
    record go out from here (activities/webhook_dispatch.py)."""

    def __init__(self, *args: Any, dispatcher: Dispatcher, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dispatcher = dispatcher

    async def run(self) -> None:
        dispatching = asyncio.create_task(self.dispatcher.run())
        try:
            await super().run()
        finally:
            dispatching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatching


# How long a sync activity's thread waits for a lifecycle to take a signal.
TELL_TIMEOUT_SECONDS = 30.0


def _champion_teller(client: Client) -> Callable[[str, str], object] | None:
    """For the email activities, which run in the worker's threads: a champion's address
    bounced, so their lifecycle is told, as `tandem contacts` tells it, by a signal sent
    on the worker's own event loop (the client lives there)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # built outside the loop that will run it: nobody to ask
        return None

    def tell(customer_id: str, email: str) -> object:
        future = asyncio.run_coroutine_threadsafe(
            tell_champion_left(client, customer_id, email), loop
        )
        return future.result(timeout=TELL_TIMEOUT_SECONDS)

    return tell


def build_worker(
    client: Client, settings: Settings, engine: Engine, task_queue: str | None = None
) -> TandemWorker:
    records = RecordActivities(engine)
    email = EmailActivities(engine, settings, _champion_teller(client))
    assessment = AssessmentActivities(engine)
    accounts = AccountActivities(email, assessment)
    webhooks = WebhookActivities(engine, settings)
    digests = DigestActivities(engine, settings)
    queue = task_queue or settings.task_queue
    return TandemWorker(
        client,
        task_queue=queue,
        workflows=[CustomerLifecycle, WebhookDeliveryWorkflow, ManagerDigests],
        workflow_runner=workflow_runner(settings),
        activities=[
            records.record_lifecycle,
            records.record_event,
            records.record_task,
            records.record_task_result,
            records.record_customer_plan,
            records.import_account,
            email.compose_email,
            accounts.open_account,
            accounts.announce_task,
            accounts.check_in,
            email.deliver_email,
            email.revise_email,
            assessment.assess_account,
            webhooks.deliver_webhook,
            webhooks.give_up_delivery,
            digests.digest_managers,
            digests.send_digest,
        ],
        dispatcher=Dispatcher(client, engine, settings, queue),
        **worker_options(),
    )


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register TandemPhase and TandemQuadrant so Temporal's UI can filter lifecycles.
    Already registered is fine; a server that refuses gets a clear instruction."""
    wanted = {key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES}
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=wanted)
        )
    except RPCError as error:
        if "already" in str(error).lower():
            return
        names = " ".join(f"--name {n} --type Keyword" for n in wanted)
        log.warning(
            "could not register search attributes (%s); ask your Temporal admin to run: "
            "temporal operator search-attribute create %s",
            error,
            names,
        )


async def schedule_digests(client: Client, settings: Settings) -> None:
    """The managers' digest schedule, as the settings say (at every worker start)."""
    every = timedelta(days=settings.digest_every_days)
    await ensure_digest_schedule(client, every, settings.digest_time_of_day, settings.task_queue)
