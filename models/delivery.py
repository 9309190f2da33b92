"""What the webhook delivery workflow and its activities exchange (pydantic only: the
workflow sandbox never loads the tables in models/webhooks.py)."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"  # retries ran out, or the endpoint answered 410 Gone
    skipped = "skipped"  # the endpoint was disabled before it could be delivered


class DeliveryPolicy(BaseModel):
    """How hard to try: exponential backoff with jitter, for up to `give_up_after`
    (three days by default; settings make it short in tests)."""

    attempt_timeout: timedelta
    first_retry: timedelta
    longest_retry: timedelta
    give_up_after: timedelta


class DeliveryOrder(BaseModel):
    delivery_id: int
    workflow_id: str
    policy: DeliveryPolicy


class DeliveryResult(BaseModel):
    status: DeliveryStatus
    attempts: int
    detail: str = ""


class GiveUp(BaseModel):
    delivery_id: int
    reason: str
