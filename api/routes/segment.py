"""Segment's HTTP tracking API: `POST /v1/track`, `/v1/identify`, `/v1/group`, `/v1/page`
and `/v1/batch`, authenticated by a write key (HTTP Basic, the key as user name, or
`writeKey` in the body as Segment also accepts), gzip or plain. Any Segment-compatible
library or pipeline sends to Tandem by pointing its host here.

A request is checked whole before anything is stored: one bad call refuses the batch
with a 400 naming it (`batch.3.event`), so nothing is half-taken. The write key is
checked in the transaction that stores the batch (one round trip fewer).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
import zlib
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import TypeAdapter, ValidationError
from pydantic_core import to_json
from starlette.concurrency import run_in_threadpool

from api.deps import get_client
from api.errors import ApiError
from db.events import ingest, prune
from db.usage import mark_told, untold_tutorials
from lifecycles import tell_tutorials
from models.plan import EventMapping
from models.segment import (
    MAX_BATCH_BYTES,
    MAX_CALL_BYTES,
    Accepted,
    IngestReceipt,
    SegmentCall,
)
from plans import event_mapping

router = APIRouter(prefix="/v1", tags=["product events (Segment)"])
log = logging.getLogger("tandem.segment")
Call = tuple[SegmentCall, str]
RECHECK_SECONDS = 60.0
PRUNE_SECONDS = 3600.0


def _write_key(request: Request, body: dict[str, Any]) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and credentials:
        try:
            return base64.b64decode(credentials.strip()).decode().partition(":")[0] or None
        except (binascii.Error, UnicodeDecodeError):
            return None
    key = body.get("writeKey")
    return key if isinstance(key, str) and key else None


async def _body(request: Request, limit: int, lists: bool = False) -> Any:
    """The JSON object sent (or with `lists`, a list of them), gunzipped when it says
    so; a 413 past `limit` bytes."""
    declared = request.headers.get("content-length", "")
    too_big = ApiError(413, "too_large", f"the request is over {limit // 1024} KB", "body")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    raw = await request.body()
    if "gzip" in request.headers.get("content-encoding", "").lower():
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            raw = inflate.decompress(raw, limit + 1)
        except zlib.error:
            raise ApiError(400, "bad_request", "the body is not valid gzip", "body") from None
    if len(raw) > limit:
        raise too_big
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, "bad_request", f"the body is not valid JSON: {error}", "body") from None
    if not isinstance(body, dict) and not (lists and isinstance(body, list)):
        raise ApiError(400, "bad_request", "the body must be a JSON object", "body")
    return body


def _field(error: ValidationError) -> tuple[int, str, str]:
    """The first problem's call (its index), field (Segment's name for it) and message."""
    first = error.errors()[0]
    index, *path = first["loc"]
    message = str(first["msg"]).removeprefix("Value error, ")
    location = ".".join(str(p) for p in path)
    if not location:  # a rule about the whole call names its field first
        head = message.split(":", 1)[0].split(" ", 1)[0]
        location = head if head in ("event", "groupId", "userId") else ""
    return int(index), location, message


# The calls of a request are validated in one call of pydantic's compiled validator.
CALLS = TypeAdapter(list[SegmentCall])


def _calls(items: list[Any], where: Callable[[int], str]) -> list[Call]:
    """The calls, each with its JSON as received; a 400 naming the first bad one, as
    `where(index)` names it."""
    payloads = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            message = f"{where(index)}: a call must be a JSON object"
            raise ApiError(400, "bad_request", message, where(index))
        encoded = to_json(item)  # pydantic's own (compiled) encoder: a quarter of json.dumps
        if len(encoded) > MAX_CALL_BYTES:
            message = f"{where(index)}: the call is over {MAX_CALL_BYTES // 1024} KB"
            raise ApiError(400, "too_large", message, where(index))
        payloads.append(encoded.decode())
    try:
        calls = CALLS.validate_python(items)
    except ValidationError as error:
        index, location, message = _field(error)
        field = ".".join(p for p in (where(index), location) if p)
        raise ApiError(400, "bad_request", f"{field}: {message}", field) from None
    return list(zip(calls, payloads, strict=True))


def _key(request: Request, body: dict[str, Any]) -> str:
    key = _write_key(request, body)
    if key is None:
        raise _unauthorized()
    return key


def _unauthorized() -> ApiError:
    message = "a valid write key is required (HTTP Basic, the key as user name)"
    return ApiError(401, "unauthorized", message)


async def _take(request: Request, make_calls: Callable[[], list[Call]], key: str) -> Accepted:
    """Check the calls and store them, on a worker thread: the event loop goes on
    reading other requests meanwhile."""
    settings, engine = request.app.state.settings, request.app.state.engine
    calls: list[Call] = []

    def mappings(plan: str) -> EventMapping:
        return event_mapping(plan, settings.plans_dir)

    state = request.app.state
    # The first request of a process prunes and checks: the monotonic clock starts near
    # zero at boot, so "an hour since zero" would wait an hour after the machine started.
    pruned = getattr(state, "events_pruned", None)
    prune_now = pruned is None or time.monotonic() - pruned > PRUNE_SECONDS
    if prune_now:
        state.events_pruned = time.monotonic()

    def work() -> IngestReceipt | None:
        calls.extend(make_calls())
        receipt = ingest(engine, key, calls, mappings)
        if prune_now:
            # Raw events past their retention go once an hour, with a batch that is
            # being stored anyway: no separate job to run.
            prune(engine, settings.events_retention_days)
        return receipt

    receipt = await run_in_threadpool(work)
    if receipt is None:
        raise _unauthorized()
    # Completions to tell: this batch's, those a `group` call let waiting events make,
    # and now and then any a Temporal out of reach left untold.
    now, checked = time.monotonic(), getattr(state, "tutorials_checked", None)
    if (
        receipt.tutorials
        or any(c.type == "group" for c, _ in calls)
        or checked is None
        or now - checked > RECHECK_SECONDS
    ):
        state.tutorials_checked = now
        await _tell_tutorials(request)
    return Accepted()


async def _tell_tutorials(request: Request) -> None:
    """Tell lifecycles of the tutorials events completed. Temporal out of reach is no
    reason to refuse events already stored: the next request tells them."""
    engine = request.app.state.engine
    pending = await run_in_threadpool(untold_tutorials, engine)
    if not pending:
        return
    try:
        client = await get_client(request)
    except ApiError as error:
        log.warning("tutorial completions wait: %s", error)
        return
    pairs = [(p.customer_id, p.tutorial) for p in pending]
    for completion, outcome in zip(pending, await tell_tutorials(client, pairs), strict=False):
        await run_in_threadpool(mark_told, engine, completion, outcome)


async def _single(request: Request, kind: str) -> Accepted:
    body = await _body(request, MAX_CALL_BYTES)
    key = _key(request, body)
    body["type"] = kind  # the endpoint says what the call is
    return await _take(request, lambda: _calls([body], lambda _: "body"), key)


@router.post("/track", response_model=Accepted)
async def track(request: Request) -> Accepted:
    """Something a user did: `event`, `properties`; `context.groupId` names the account."""
    return await _single(request, "track")


@router.post("/identify", response_model=Accepted)
async def identify(request: Request) -> Accepted:
    """Who a user is: `traits`."""
    return await _single(request, "identify")


@router.post("/group", response_model=Accepted)
async def group(request: Request) -> Accepted:
    """Ties the user to an account: `groupId` is its external id or customer id."""
    return await _single(request, "group")


@router.post("/page", response_model=Accepted)
async def page(request: Request) -> Accepted:
    """A page the user saw: `name`, `properties`."""
    return await _single(request, "page")


@router.post("/batch", response_model=Accepted)
async def batch(request: Request) -> Accepted:
    """Many calls at once, `{"batch": [...]}`, as the Segment libraries send them."""
    body = await _body(request, MAX_BATCH_BYTES, lists=True)
    # Segment's `{"batch": [...]}`; a bare list of calls, or one call, as a webhook
    # destination sends them (Segment's Webhooks (Actions), batched or not).
    if isinstance(body, list):
        body = {"batch": body}
    elif "batch" not in body and "type" in body:
        body = {"batch": [body], "writeKey": body.get("writeKey")}
    key = _key(request, body)
    items = body.get("batch")
    if not isinstance(items, list) or not items:
        raise ApiError(400, "bad_request", "batch: a non-empty list of calls is required", "batch")
    shared = body.get("context")

    def calls() -> list[Call]:
        if isinstance(shared, dict):
            for item in items:
                if isinstance(item, dict):
                    item["context"] = {**shared, **(item.get("context") or {})}
        return _calls(items, lambda index: f"batch.{index}")

    return await _take(request, calls, key)
