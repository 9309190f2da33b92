"""Outbound webhook endpoints and their deliveries (admins), and the events Tandem sends,
documented in the OpenAPI document's `webhooks` (docs/webhooks.md has the same).

Not to be confused with api/routes/webhooks.py: sign-ups coming IN.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel, Field

from api.deps import AdminDep, EngineDep, SettingsDep
from api.errors import ApiError, ErrorResponse
from db.engine import session_scope
from db.webhooks import (
    InvalidEndpoint,
    NotFound,
    add_endpoint,
    get_endpoint,
    list_deliveries,
    list_endpoints,
    redeliver,
    rotate_secret,
    send_test,
    set_enabled,
)
from models.events import EVENT_SUMMARIES, EventType, envelope_model
from models.webhooks import (
    WebhookDeliveryPublic,
    WebhookEndpoint,
    WebhookEndpointIn,
    WebhookEndpointPublic,
    WebhookEndpointSecret,
)

router = APIRouter(prefix="/webhook-endpoints", tags=["webhook endpoints"])
deliveries_router = APIRouter(prefix="/webhook-deliveries", tags=["webhook endpoints"])


class DisableRequest(BaseModel):
    reason: str = Field(default="disabled by an admin", max_length=500)


class TestSent(BaseModel):
    event_id: str = Field(description="the webhook-id the test delivery carries")


def _with_secret(row: WebhookEndpoint) -> WebhookEndpointSecret:
    return WebhookEndpointSecret(secret=row.secret, **WebhookEndpointPublic.of(row).model_dump())


def _missing(error: NotFound) -> ApiError:
    return ApiError(404, "not_found", str(error))


@router.get("", response_model=list[WebhookEndpointPublic])
def endpoints(engine: EngineDep, _: AdminDep) -> list[WebhookEndpointPublic]:
    return [WebhookEndpointPublic.of(row) for row in list_endpoints(engine)]


@router.post("", response_model=WebhookEndpointSecret, status_code=201)
def new_endpoint(
    spec: WebhookEndpointIn, engine: EngineDep, settings: SettingsDep, _: AdminDep
) -> WebhookEndpointSecret:
    """Its secret (`whsec_...`) is in this answer; `events` empty means every type."""
    try:
        row = add_endpoint(engine, spec, settings.webhooks_allow_private)
    except InvalidEndpoint as error:
        raise ApiError(422, "invalid", str(error), field=error.field) from None
    return _with_secret(row)


@router.get("/{endpoint_id}", response_model=WebhookEndpointPublic)
def endpoint(endpoint_id: str, engine: EngineDep, _: AdminDep) -> WebhookEndpointPublic:
    try:
        with session_scope(engine) as session:
            return WebhookEndpointPublic.of(get_endpoint(session, endpoint_id))
    except NotFound as error:
        raise _missing(error) from None


@router.post("/{endpoint_id}/disable", response_model=WebhookEndpointPublic)
def disable_endpoint(
    endpoint_id: str, engine: EngineDep, admin: AdminDep, request: DisableRequest | None = None
) -> WebhookEndpointPublic:
    reason = f"{(request or DisableRequest()).reason} ({admin.actor})"
    try:
        return WebhookEndpointPublic.of(set_enabled(engine, endpoint_id, False, reason))
    except NotFound as error:
        raise _missing(error) from None


@router.post("/{endpoint_id}/enable", response_model=WebhookEndpointPublic)
def enable_endpoint(endpoint_id: str, engine: EngineDep, _: AdminDep) -> WebhookEndpointPublic:
    try:
        return WebhookEndpointPublic.of(set_enabled(engine, endpoint_id, True, ""))
    except NotFound as error:
        raise _missing(error) from None


@router.post("/{endpoint_id}/rotate-secret", response_model=WebhookEndpointSecret)
def rotate(
    endpoint_id: str, engine: EngineDep, settings: SettingsDep, _: AdminDep
) -> WebhookEndpointSecret:
    """A new secret; the old one also signs until `rotating_until` (both signatures)."""
    overlap = timedelta(seconds=settings.webhooks_rotation_seconds)
    try:
        return _with_secret(rotate_secret(engine, endpoint_id, overlap))
    except NotFound as error:
        raise _missing(error) from None


@router.post(
    "/{endpoint_id}/test",
    response_model=TestSent,
    status_code=202,
    responses={409: {"model": ErrorResponse, "description": "the endpoint is disabled"}},
)
def test_endpoint(endpoint_id: str, engine: EngineDep, _: AdminDep) -> TestSent:
    """A `webhook.test` event to this endpoint only; see its deliveries for the outcome."""
    try:
        return TestSent(event_id=send_test(engine, endpoint_id).id)
    except NotFound as error:
        raise _missing(error) from None
    except InvalidEndpoint as error:  # disabled
        raise ApiError(409, "conflict", str(error), field=error.field) from None


@router.get("/{endpoint_id}/deliveries", response_model=list[WebhookDeliveryPublic])
def deliveries(
    endpoint_id: str, engine: EngineDep, _: AdminDep, limit: int = Query(50, ge=1, le=500)
) -> list[WebhookDeliveryPublic]:
    """Newest first, with every attempt: status code, duration, error."""
    try:
        return list_deliveries(engine, endpoint_id, limit)
    except NotFound as error:
        raise _missing(error) from None


@deliveries_router.post("/{delivery_id}/redeliver", response_model=TestSent, status_code=202)
def redeliver_one(
    delivery_id: int, engine: EngineDep, settings: SettingsDep, _: AdminDep
) -> TestSent:
    """Send the event to the endpoint again, with the same webhook-id."""
    try:
        return TestSent(event_id=redeliver(engine, delivery_id, settings.public_url).event_id)
    except NotFound as error:
        raise _missing(error) from None


SIGNING = (
    "Sent as a POST with the Standard Webhooks headers `webhook-id` (the same on every "
    "retry), `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256 of "
    '"id.timestamp.body">` with the endpoint\'s secret; two, space-separated, during a '
    "rotation). Answer 2xx; anything else is retried with backoff for up to three days, "
    "`Retry-After` honoured on 429 and 503; 410 disables the endpoint."
)


def document_events(app: FastAPI) -> None:
    """One entry per event type in the OpenAPI document's `webhooks`."""
    for event_type in EventType:
        model = envelope_model(event_type)

        def receive(body) -> None:  # type: ignore[no-untyped-def]
            """What the receiver gets."""

        receive.__annotations__ = {"body": model, "return": None}
        app.webhooks.post(
            event_type.value,
            summary=EVENT_SUMMARIES[event_type],
            description=SIGNING,
            name=event_type.value,
        )(receive)
