"""The Python client of lifecycles: what the CLI (and the API) call to start one, send it
events and read it. Every call goes through Temporal; none writes the records directly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from codec import data_converter
from models.customer import CustomerProfile, SignUp, workflow_id_for
from models.imports import ImportedAccount
from models.lifecycle import (
    CustomerPlanReceipt,
    LifecycleEnd,
    LifecycleInput,
    LifecycleStatus,
    SignupIdentity,
    SignupReceipt,
)
from models.plan import PlanTemplate
from models.scoring import Assessment
from models.signals import SurveyAnswer
from models.success_plan import CustomerPlanEdit
from models.tasks import TaskCompletion, TaskKey, TaskReceipt
from settings import Settings
from workflows.lifecycle import CustomerLifecycle

T = TypeVar("T")


class LifecycleError(Exception):
    """A refusal or a missing lifecycle, with a message for the person who asked."""


class NoWorker(LifecycleError):
    """Nothing polls the task queue, so no lifecycle can answer."""


class SignupConflict(LifecycleError):
    """The sign-up's customer id is another customer's (another external id)."""


def tls_config(settings: Settings) -> TLSConfig | bool:
    """mTLS with the configured client certificate, plain TLS for an API key or
    `temporal_tls`, none for the embedded dev server."""
    if settings.temporal_tls_cert or settings.temporal_tls_key:
        if not (settings.temporal_tls_cert and settings.temporal_tls_key):
            raise LifecycleError("TANDEM_TEMPORAL_TLS_CERT and TANDEM_TEMPORAL_TLS_KEY go together")
        return TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
            server_root_ca_cert=(
                settings.temporal_tls_ca.read_bytes() if settings.temporal_tls_ca else None
            ),
        )
    if settings.temporal_tls_ca:
        return TLSConfig(server_root_ca_cert=settings.temporal_tls_ca.read_bytes())
    return settings.temporal_tls or bool(settings.temporal_api_key)


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=settings.temporal_api_key,
        tls=tls_config(settings),
        data_converter=data_converter(settings),
    )


async def sign_up(
    client: Client, signup: SignUp, plan: PlanTemplate, task_queue: str
) -> SignupReceipt:
    """Start the customer's lifecycle, or find the one already running (update-with-start),
    and return once the welcome email is composed."""
    return await _open(
        client, LifecycleInput(customer=CustomerProfile.from_signup(signup), plan=plan), task_queue
    )


async def import_account(
    client: Client, signup: SignUp, plan: PlanTemplate, account: ImportedAccount, task_queue: str
) -> SignupReceipt:
    """Start an existing account's lifecycle mid-term, or find the one already running
    (update-with-start, as sign-up): importing the same account again changes nothing.
    Returns once the account's record is opened."""
    opening = LifecycleInput(
        customer=CustomerProfile.from_signup(signup), plan=plan, imported=account
    )
    return await _open(client, opening, task_queue)


async def _open(client: Client, opening: LifecycleInput, task_queue: str) -> SignupReceipt:
    customer = opening.customer
    start = WithStartWorkflowOperation(
        CustomerLifecycle.run,
        opening,
        id=workflow_id_for(customer.customer_id),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        task_queue=task_queue,
    )
    try:
        return await client.execute_update_with_start_workflow(
            CustomerLifecycle.acknowledge_signup,
            SignupIdentity(external_id=customer.external_id),
            start_workflow_operation=start,
        )
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        if isinstance(cause, ApplicationError) and cause.type == "SignupConflict":
            raise SignupConflict(cause.message) from None
        raise


# How long a caller waits for a lifecycle before asking whether any worker is there.
WORKER_PATIENCE_SECONDS = 10.0


async def workers_polling(client: Client, task_queue: str) -> int:
    """How many workers poll the queue for workflow tasks now (0 when the server cannot
    tell, as the time-skipping test server cannot)."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    try:
        return len((await client.workflow_service.describe_task_queue(request)).pollers)
    except RPCError as error:
        if error.status is RPCStatusCode.UNIMPLEMENTED:
            return 0
        raise


async def with_a_worker(
    work: Awaitable[T], client: Callable[[], Awaitable[Client]], task_queue: str, refusal: str
) -> T:
    """The result of `work`, which waits on a lifecycle. Without a worker it would wait
    forever: every WORKER_PATIENCE_SECONDS the queue is asked for one, and with none
    polling `work` is abandoned with NoWorker(refusal)."""
    pending = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({pending}, timeout=WORKER_PATIENCE_SECONDS)
        if done:
            return pending.result()
        if not await workers_polling(await client(), task_queue):
            pending.cancel()
            abandoned = (asyncio.CancelledError, RPCError, WorkflowUpdateRPCTimeoutOrCancelledError)
            with contextlib.suppress(*abandoned):
                await pending
            raise NoWorker(f"no worker is polling the task queue {task_queue!r}: {refusal}")


def _handle(client: Client, customer_id: str) -> WorkflowHandle[CustomerLifecycle, LifecycleEnd]:
    return client.get_workflow_handle_for(CustomerLifecycle.run, workflow_id_for(customer_id))


async def _explain(customer_id: str, error: Exception) -> LifecycleError:
    if isinstance(error, WorkflowUpdateFailedError):
        cause = error.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause or error)
        return LifecycleError(message)
    if isinstance(error, RPCError) and error.status is RPCStatusCode.NOT_FOUND:
        return LifecycleError(f"no running lifecycle for customer {customer_id!r}")
    return LifecycleError(str(error))


async def complete_task(client: Client, completion: TaskCompletion) -> TaskReceipt:
    """Returns once the result is recorded, so the caller can read its own write."""
    try:
        customer_id = TaskKey.parse(completion.task_id).customer_id
    except ValueError as error:
        raise LifecycleError(str(error)) from None
    try:
        return await _handle(client, customer_id).execute_update(
            CustomerLifecycle.complete_task, completion, id=completion.update_id()
        )
    except (WorkflowUpdateFailedError, RPCError) as error:
        raise await _explain(customer_id, error) from None


async def status(client: Client, customer_id: str) -> LifecycleStatus:
    try:
        return await _handle(client, customer_id).query(CustomerLifecycle.status)
    except RPCError as error:
        raise await _explain(customer_id, error) from None


async def tutorial_completed(client: Client, customer_id: str, tutorial_key: str) -> None:
    try:
        await _handle(client, customer_id).signal(
            CustomerLifecycle.tutorial_completed, tutorial_key
        )
    except RPCError as error:
        raise await _explain(customer_id, error) from None


async def tell_tutorials(client: Client, completions: list[tuple[str, str]]) -> list[str]:
    """Tell each (customer id, tutorial key) to its lifecycle; one outcome per pair, in
    order. A customer without a running lifecycle is an outcome, not an error; Temporal
    out of reach stops at the first pair (the rest are left for a later try)."""
    outcomes = []
    for customer_id, tutorial_key in completions:
        try:
            await _handle(client, customer_id).signal(
                CustomerLifecycle.tutorial_completed, tutorial_key
            )
        except RPCError as error:
            if error.status is not RPCStatusCode.NOT_FOUND:
                break
            outcomes.append("no running lifecycle")
            continue
        outcomes.append("told")
    return outcomes


async def tell_champion_left(client: Client, customer_id: str, email: str) -> str:
    """Tell the lifecycle a champion left (it opens the `champion_left` playbook once);
    the outcome, as `tell_tutorials` gives it."""
    try:
        await _handle(client, customer_id).signal(CustomerLifecycle.champion_left, email)
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            return "no running lifecycle"
        raise await _explain(customer_id, error) from None
    return "told"


async def cancel(client: Client, customer_id: str, reason: str) -> None:
    try:
        await _handle(client, customer_id).signal(CustomerLifecycle.cancel, reason)
    except RPCError as error:
        raise await _explain(customer_id, error) from None


async def edit_success_plan(
    client: Client, customer_id: str, edit: CustomerPlanEdit
) -> CustomerPlanReceipt:
    """The customer's own words, through the lifecycle (validated there, then stored)."""
    try:
        return await _handle(client, customer_id).execute_update(
            CustomerLifecycle.edit_success_plan, edit.model_dump()
        )
    except (WorkflowUpdateFailedError, RPCError) as error:
        raise await _explain(customer_id, error) from None


async def survey_answered(client: Client, customer_id: str, answer: SurveyAnswer) -> None:
    try:
        await _handle(client, customer_id).signal(CustomerLifecycle.survey_answered, answer)
    except RPCError as error:
        raise await _explain(customer_id, error) from None


async def reassess(client: Client, customer_id: str) -> Assessment:
    """Score the account now; returns the new assessment."""
    try:
        return await _handle(client, customer_id).execute_update(CustomerLifecycle.reassess)
    except (WorkflowUpdateFailedError, RPCError) as error:
        raise await _explain(customer_id, error) from None
