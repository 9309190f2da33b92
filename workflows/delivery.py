"""One event to one endpoint, durably: attempts until delivered or until retries run out.

The lifecycle never waits for this: the event was recorded with its change, and the
worker's dispatcher starts one of these per delivery. An attempt that fails is retried
by Temporal after the delay the attempt chose (backoff with jitter, or Retry-After); a
worker lost mid-attempt is retried after the attempt's timeout, with the same webhook-id.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from models.delivery import DeliveryOrder, DeliveryResult, DeliveryStatus, GiveUp

# Room, beyond the HTTP timeout, to record the attempt.
BOOKKEEPING = timedelta(seconds=5)


@workflow.defn(name="WebhookDelivery")
class WebhookDeliveryWorkflow:
    @workflow.run
    async def run(self, order: DeliveryOrder) -> DeliveryResult:
        policy = order.policy
        try:
            return await workflow.execute_activity(
                "deliver_webhook",
                order,
                result_type=DeliveryResult,
                start_to_close_timeout=policy.attempt_timeout + BOOKKEEPING,
                schedule_to_close_timeout=policy.give_up_after,
                # The attempt sets each delay itself (next_retry_delay); these apply
                # when an attempt is lost with its worker.
                retry_policy=RetryPolicy(
                    initial_interval=policy.first_retry,
                    backoff_coefficient=2.0,
                    maximum_interval=policy.longest_retry,
                ),
            )
        except ActivityError as error:
            cause = error.cause or error
            reason = str(cause) or type(cause).__name__
            await workflow.execute_activity(
                "give_up_delivery",
                GiveUp(delivery_id=order.delivery_id, reason=reason),
                start_to_close_timeout=timedelta(seconds=30),
            )
            return DeliveryResult(status=DeliveryStatus.failed, attempts=0, detail=reason)
