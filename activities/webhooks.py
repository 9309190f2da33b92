"""The delivery activities: one HTTP attempt per call, logged, signed per Standard Webhooks.

Temporal retries a failed attempt; this code picks the delay (exponential backoff with
jitter, or the receiver's `Retry-After` on 429 and 503) through `next_retry_delay`, so
the workflow's retry policy only bounds the whole (give up after three days).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy import Engine
from standardwebhooks import Webhook
from temporalio import activity
from temporalio.exceptions import ApplicationError

from db.engine import session_scope
from db.webhooks import InvalidEndpoint, check_destination, disable, signing_secrets
from models.delivery import DeliveryOrder, DeliveryPolicy, DeliveryResult, DeliveryStatus, GiveUp
from models.webhooks import (
    EndpointKind,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from settings import Settings

USER_AGENT = "Tandem-Webhooks/1"


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None  # None: delivered
    retry_after: timedelta | None
    duration_ms: int


def backoff(policy: DeliveryPolicy, attempt: int) -> timedelta:
    """Before attempt `attempt + 1`: doubling from the first retry up to the longest,
    with "equal jitter" (half fixed, half random) so that retries to an endpoint that
    came back do not all arrive at once."""
    ceiling = min(policy.longest_retry, policy.first_retry * 2 ** (attempt - 1))
    return ceiling / 2 + ceiling / 2 * random.random()


def retry_after(response: httpx.Response, policy: DeliveryPolicy) -> timedelta | None:
    """A 429's or 503's Retry-After, seconds or an HTTP date, as asked: past the point
    of giving up, the delivery gives up."""
    if response.status_code not in (429, 503):
        return None
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        wait = timedelta(seconds=float(value))
    except ValueError:
        try:
            wait = parsedate_to_datetime(value) - datetime.now(UTC)
        except (TypeError, ValueError):
            return None
    return max(timedelta(0), min(wait, policy.give_up_after))


def headers_for(endpoint: WebhookEndpoint, webhook_id: str, body: str) -> dict[str, str]:
    headers = {"content-type": "application/json", "user-agent": USER_AGENT}
    if endpoint.kind == EndpointKind.slack.value:
        return headers  # Slack's incoming webhooks take the message only
    now = datetime.now(UTC)
    signatures = [
        Webhook(secret).sign(webhook_id, now, body) for secret in signing_secrets(endpoint, now)
    ]
    headers["webhook-id"] = webhook_id
    headers["webhook-timestamp"] = str(int(now.timestamp()))
    headers["webhook-signature"] = " ".join(signatures)
    return headers


class WebhookActivities:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    @activity.defn(name="deliver_webhook")
    def deliver_webhook(self, order: DeliveryOrder) -> DeliveryResult:
        with session_scope(self.engine) as session:
            delivery = session.get(WebhookDelivery, order.delivery_id)
            if delivery is None:
                raise ApplicationError(f"no delivery {order.delivery_id}", non_retryable=True)
            if delivery.status != DeliveryStatus.pending.value:  # a retry after the commit
                return DeliveryResult(status=DeliveryStatus(delivery.status), attempts=0)
            endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
            assert endpoint is not None
            if not endpoint.enabled:
                delivery.status, delivery.finished_at = DeliveryStatus.skipped.value, _now()
                delivery.last_error = f"endpoint disabled: {endpoint.disabled_reason}"
                session.add(delivery)
                return DeliveryResult(status=DeliveryStatus.skipped, attempts=delivery.attempts)
            webhook_id, body = delivery.event_id, delivery.body
        return self._log(order, self._attempt(endpoint, webhook_id, body, order.policy))

    def _attempt(
        self, endpoint: WebhookEndpoint, webhook_id: str, body: str, policy: DeliveryPolicy
    ) -> Attempt:
        """One POST: its status, what went wrong, and the receiver's Retry-After."""
        started = time.monotonic()

        def took() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            check_destination(endpoint.url, self.settings.webhooks_allow_private)
            with httpx.Client(
                timeout=policy.attempt_timeout.total_seconds(), follow_redirects=False
            ) as http:
                response = http.post(
                    endpoint.url, content=body, headers=headers_for(endpoint, webhook_id, body)
                )
        except (httpx.HTTPError, InvalidEndpoint) as failure:
            return Attempt(None, f"{type(failure).__name__}: {failure}"[:1000], None, took())
        code = response.status_code
        if response.is_success:
            return Attempt(code, None, None, took())
        error = f"HTTP {code}: {response.text[:200]}"
        if response.is_redirect:
            error = f"HTTP {code}: redirects are not followed"
        return Attempt(code, error, retry_after(response, policy), took())

    def _log(self, order: DeliveryOrder, outcome: Attempt) -> DeliveryResult:
        """Record the attempt, and what it decides, in one transaction."""
        number = activity.info().attempt
        status_code, error, wait = outcome.status_code, outcome.error, outcome.retry_after
        with session_scope(self.engine) as session:
            delivery = session.get(WebhookDelivery, order.delivery_id)
            assert delivery is not None
            session.add(
                WebhookAttempt(
                    delivery_id=order.delivery_id,
                    attempt=number,
                    status_code=status_code,
                    duration_ms=outcome.duration_ms,
                    error=error,
                )
            )
            delivery.attempts += 1
            delivery.last_error = error
            if error is None:
                delivery.status, delivery.finished_at = DeliveryStatus.delivered.value, _now()
            elif status_code == 410:  # Gone: the receiver asks us to stop
                delivery.status, delivery.finished_at = DeliveryStatus.failed.value, _now()
                endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
                assert endpoint is not None
                disable(session, endpoint, f"the endpoint answered 410 Gone ({order.workflow_id})")
            session.add(delivery)
            result = DeliveryResult(
                status=DeliveryStatus(delivery.status), attempts=delivery.attempts
            )
        if result.status is DeliveryStatus.pending:
            raise ApplicationError(
                error or "not delivered",
                type="DeliveryFailed",
                next_retry_delay=wait if wait is not None else backoff(order.policy, number),
            )
        return result

    @activity.defn(name="give_up_delivery")
    def give_up_delivery(self, give_up: GiveUp) -> None:
        """Retries ran out: the delivery failed, and its endpoint is disabled (an admin
        sees why in `tandem webhooks list`, enables it and redelivers)."""
        with session_scope(self.engine) as session:
            delivery = session.get(WebhookDelivery, give_up.delivery_id)
            assert delivery is not None
            if delivery.status == DeliveryStatus.pending.value:
                delivery.status, delivery.finished_at = DeliveryStatus.failed.value, _now()
                session.add(delivery)
            endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
            assert endpoint is not None
            last = delivery.last_error or give_up.reason
            reason = f"retries ran out after {delivery.attempts} attempts; last: {last}"
            disable(session, endpoint, reason[:1000])


def _now() -> datetime:
    return datetime.now(UTC)
