"""POST /webhooks/signup: a billing system, CRM or sign-up form starts a lifecycle.

The sender signs the raw body: header `X-Tandem-Timestamp` (Unix seconds) and
`X-Tandem-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the shared
secret>`. Bad, missing or stale signatures get 401 and start nothing. The sender's
`external_id` makes the customer id, so a resent webhook finds the same lifecycle.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, ValidationError

from api.deps import ClientDep, SettingsDep, rate_limit
from api.errors import ApiError, ErrorResponse
from api.security import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_webhook
from lifecycles import SignupConflict, sign_up
from models.customer import SignUp
from models.lifecycle import SignupReceipt
from models.tasks import describe_validation_error
from plans import PlanError, load_plan

router = APIRouter(tags=["webhooks"])


class WebhookSignUp(SignUp):
    external_id: str = Field(  # type: ignore[assignment]
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",
        description="the sender's own id for this customer: a resend is idempotent",
    )


class WebhookReceipt(BaseModel):
    customer_id: str
    workflow_id: str
    phase: str
    new: bool
    plan: str

    @classmethod
    def of(cls, receipt: SignupReceipt) -> WebhookReceipt:
        return cls(**receipt.model_dump(mode="json"))


@router.post(
    "/webhooks/signup",
    response_model=WebhookReceipt,
    responses={
        401: {"description": "bad, missing or stale signature"},
        409: {
            "model": ErrorResponse,
            "description": "the customer id is another customer's (another external id)",
        },
    },
    dependencies=[rate_limit("webhook")],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": WebhookSignUp.model_json_schema()}},
        }
    },
)
async def signup_webhook(
    request: Request, response: Response, settings: SettingsDep, client: ClientDep
) -> WebhookReceipt:
    body = await request.body()
    refused = verify_webhook(
        settings.webhook_secret,
        request.headers.get(TIMESTAMP_HEADER),
        request.headers.get(SIGNATURE_HEADER),
        body,
        settings.webhook_tolerance_seconds,
    )
    if refused:
        raise ApiError(401, "bad_signature", f"webhook refused: {refused}")
    try:
        signup = WebhookSignUp.model_validate(json.loads(body))
    except json.JSONDecodeError:
        raise ApiError(422, "invalid", "the body is not valid JSON") from None
    except ValidationError as error:
        field = ".".join(str(p) for p in error.errors()[0]["loc"]) or None
        raise ApiError(422, "invalid", describe_validation_error(error), field) from None
    try:
        plan = load_plan(signup.plan, settings.plans_dir)
    except PlanError as error:
        raise ApiError(422, "invalid", str(error), "plan") from None
    try:
        receipt = await sign_up(client, signup, plan, settings.task_queue)
    except SignupConflict as conflict:
        raise ApiError(409, "conflict", str(conflict), "external_id") from None
    response.status_code = 201 if receipt.new else 200
    return WebhookReceipt.of(receipt)
