"""The records of outbound webhooks: endpoints, the event outbox and deliveries.

`record_event` is what an activity calls, inside the transaction that records a change,
so an event exists exactly when its change does. Endpoints are added here too, for the
API and the CLI alike, after their URL passes the address check.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel
from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from db.engine import insert_once, session_scope
from models.delivery import DeliveryStatus
from models.events import TEST_EVENT, EventType, parse_event_types
from models.slack import slack_message
from models.webhooks import (
    EndpointKind,
    WebhookAttempt,
    WebhookAttemptPublic,
    WebhookDelivery,
    WebhookDeliveryPublic,
    WebhookEndpoint,
    WebhookEndpointIn,
    WebhookEvent,
)


class InvalidEndpoint(ValueError):
    """Bad endpoint input; the message starts with the field's name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFound(LookupError):
    pass


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def check_destination(url: str, allow_private: bool) -> None:
    """An http(s) URL whose host resolves to public addresses only (unless allowed):
    Tandem must not become a way to reach its own network (SSRF). Checked when an
    endpoint is added and again before every attempt, as DNS answers can change."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidEndpoint("url", f"{url!r} is not an http(s) URL with a host")
    if parts.username or parts.password:
        raise InvalidEndpoint("url", "credentials in the URL are not accepted")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError) as error:
        raise InvalidEndpoint("url", f"cannot resolve {parts.hostname!r} ({error})") from None
    if allow_private:
        return
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if not address.is_global or address.is_multicast:
            raise InvalidEndpoint(
                "url",
                f"{parts.hostname} resolves to {address}, a loopback, private or "
                "link-local address (TANDEM_WEBHOOKS_ALLOW_PRIVATE=true allows it)",
            )


def add_endpoint(engine: Engine, spec: WebhookEndpointIn, allow_private: bool) -> WebhookEndpoint:
    """Check everything first: a refused endpoint stores nothing."""
    try:
        types = parse_event_types(spec.events)
    except ValueError as error:
        raise InvalidEndpoint("events", str(error)) from None
    check_destination(spec.url, allow_private)
    row = WebhookEndpoint(
        id=f"ep_{uuid.uuid4().hex[:20]}",
        url=spec.url,
        kind=spec.kind.value,
        description=spec.description,
        event_types=[t.value for t in types],
        secret=new_secret(),
    )
    with session_scope(engine) as session:
        session.add(row)
    return row


def get_endpoint(session: Session, endpoint_id: str) -> WebhookEndpoint:
    row = session.get(WebhookEndpoint, endpoint_id)
    if row is None:
        raise NotFound(f"no webhook endpoint {endpoint_id!r}")
    return row


def list_endpoints(engine: Engine) -> list[WebhookEndpoint]:
    with session_scope(engine) as session:
        return list(session.exec(select(WebhookEndpoint).order_by(col(WebhookEndpoint.created_at))))


def disable(session: Session, row: WebhookEndpoint, reason: str) -> None:
    if row.enabled:
        row.enabled, row.disabled_reason, row.disabled_at = False, reason, datetime.now(UTC)
        session.add(row)


def set_enabled(engine: Engine, endpoint_id: str, enabled: bool, reason: str) -> WebhookEndpoint:
    with session_scope(engine) as session:
        row = get_endpoint(session, endpoint_id)
        if enabled:
            row.enabled, row.disabled_reason, row.disabled_at = True, None, None
            session.add(row)
        else:
            disable(session, row, reason)
        return row


def rotate_secret(engine: Engine, endpoint_id: str, overlap: timedelta) -> WebhookEndpoint:
    """A new secret; the old one keeps signing (both signatures sent) for `overlap`."""
    with session_scope(engine) as session:
        row = get_endpoint(session, endpoint_id)
        row.previous_secret, row.secret = row.secret, new_secret()
        row.previous_secret_expires_at = datetime.now(UTC) + overlap
        session.add(row)
        return row


def signing_secrets(row: WebhookEndpoint, now: datetime) -> list[str]:
    """The current secret, then the previous one while a rotation's overlap lasts."""
    expires = row.previous_secret_expires_at
    if row.previous_secret and expires is not None and expires > now:
        return [row.secret, row.previous_secret]
    return [row.secret]


# -- events ---------------------------------------------------------------------------------


def record_event(session: Session, type: EventType, data: BaseModel, key: str) -> None:
    """Put an event in the outbox, in the caller's transaction. `key` names the change
    (unique): an activity retried after its commit records the event once."""
    values = {
        "id": f"msg_{uuid.uuid4().hex}",
        "key": f"{type.value}:{key}",
        "type": type.value,
        "created_at": datetime.now(UTC),
        "data": data.model_dump(mode="json"),
    }
    # Without flushing the caller's pending rows: it may still ask which are new.
    with session.no_autoflush:
        insert_once(session, WebhookEvent, values)


def send_test(engine: Engine, endpoint_id: str) -> WebhookEvent:
    """A `webhook.test` event for this one endpoint, delivered like any other."""
    with session_scope(engine) as session:
        row = get_endpoint(session, endpoint_id)
        if not row.enabled:
            reason = f"is disabled ({row.disabled_reason}); enable it first"
            raise InvalidEndpoint("endpoint", f"{endpoint_id} {reason}")
        event = WebhookEvent(
            id=f"msg_{uuid.uuid4().hex}",
            key=f"{TEST_EVENT}:{uuid.uuid4().hex}",
            type=TEST_EVENT,
            data={"endpoint_id": row.id, "message": "A test event from Tandem"},
            only_endpoint_id=row.id,
        )
        session.add(event)
        return event


def _absolute(value: Any, public_url: str) -> Any:
    """Links are recorded as dashboard paths and sent absolute, under the public URL."""
    if isinstance(value, dict):
        return {
            k: public_url + v
            if k == "link" and isinstance(v, str) and v.startswith("/")
            else _absolute(v, public_url)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_absolute(v, public_url) for v in value]
    return value


def render_body(event: WebhookEvent, endpoint: WebhookEndpoint, public_url: str) -> str:
    data = _absolute(event.data, public_url.rstrip("/"))
    if endpoint.kind == EndpointKind.slack.value:
        return json.dumps(slack_message(event.type, data))
    timestamp = event.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"type": event.type, "timestamp": timestamp, "data": data})


def make_deliveries(engine: Engine, public_url: str, limit: int = 100) -> int:
    """One delivery per subscribed endpoint for each event not yet dispatched, with the
    body it will carry on every attempt. Returns how many events were dispatched."""
    with session_scope(engine) as session:
        events = session.exec(
            select(WebhookEvent)
            .where(col(WebhookEvent.dispatched_at).is_(None))
            .order_by(col(WebhookEvent.created_at))
            .limit(limit)
        ).all()
        if not events:
            return 0
        endpoints = session.exec(
            select(WebhookEndpoint).where(col(WebhookEndpoint.enabled).is_(True))
        ).all()
        for event in events:
            for endpoint in endpoints:
                if event.only_endpoint_id is not None:
                    wanted = endpoint.id == event.only_endpoint_id
                else:
                    wanted = endpoint.wants(event.type)
                if wanted:
                    body = render_body(event, endpoint, public_url)
                    values = {"event_id": event.id, "endpoint_id": endpoint.id, "round": 0}
                    insert_once(
                        session,
                        WebhookDelivery,
                        {**values, "body": body, "created_at": datetime.now(UTC)},
                    )
            event.dispatched_at = datetime.now(UTC)
            session.add(event)
        return len(events)


def unstarted_deliveries(engine: Engine, limit: int = 100) -> list[tuple[int, str]]:
    """Deliveries whose workflow is not started yet: their ids and workflow ids, which
    are unique across databases too (the event id is random)."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(WebhookDelivery)
            .where(col(WebhookDelivery.started_at).is_(None))
            .order_by(col(WebhookDelivery.id))
            .limit(limit)
        ).all()
        return [(row.id, delivery_workflow_id(row)) for row in rows if row.id is not None]


def delivery_workflow_id(row: WebhookDelivery) -> str:
    return f"webhook-{row.event_id}-{row.endpoint_id}-r{row.round}"


def mark_started(engine: Engine, delivery_id: int) -> None:
    with session_scope(engine) as session:
        row = session.get(WebhookDelivery, delivery_id)
        if row is not None and row.started_at is None:
            row.started_at = datetime.now(UTC)
            session.add(row)


def prune_events(engine: Engine, days: int, now: datetime | None = None) -> int:
    """Drop events older than `days` whose every delivery has finished, with their
    deliveries and attempts; how many events went. An event still waiting to be
    dispatched, or with a delivery still retrying, is kept whatever its age."""
    before = (now or datetime.now(UTC)) - timedelta(days=days)
    unfinished = select(WebhookDelivery.event_id).where(col(WebhookDelivery.finished_at).is_(None))
    old = (
        select(WebhookEvent.id)
        .where(col(WebhookEvent.created_at) < before)
        .where(col(WebhookEvent.dispatched_at).is_not(None))
        .where(col(WebhookEvent.id).not_in(unfinished))
    )
    with session_scope(engine) as session:
        events = list(session.exec(old).all())
        if not events:
            return 0
        deliveries = select(WebhookDelivery.id).where(col(WebhookDelivery.event_id).in_(events))
        session.execute(
            delete(WebhookAttempt).where(col(WebhookAttempt.delivery_id).in_(deliveries))
        )
        session.execute(delete(WebhookDelivery).where(col(WebhookDelivery.event_id).in_(events)))
        session.execute(delete(WebhookEvent).where(col(WebhookEvent.id).in_(events)))
        return len(events)


def redeliver(engine: Engine, delivery_id: int, public_url: str) -> WebhookDelivery:
    """Send an event to an endpoint again, as a new round with the same webhook-id."""
    with session_scope(engine) as session:
        old = session.get(WebhookDelivery, delivery_id)
        if old is None:
            raise NotFound(f"no webhook delivery {delivery_id}")
        event = session.get(WebhookEvent, old.event_id)
        endpoint = get_endpoint(session, old.endpoint_id)
        assert event is not None
        last = session.exec(
            select(WebhookDelivery.round)
            .where(
                WebhookDelivery.event_id == old.event_id,
                WebhookDelivery.endpoint_id == old.endpoint_id,
            )
            .order_by(col(WebhookDelivery.round).desc())
        ).first()
        row = WebhookDelivery(
            event_id=event.id,
            endpoint_id=endpoint.id,
            round=(last or 0) + 1,
            body=render_body(event, endpoint, public_url),
        )
        session.add(row)
        return row


def list_deliveries(
    engine: Engine, endpoint_id: str | None = None, limit: int = 50
) -> list[WebhookDeliveryPublic]:
    """Newest first, each with every attempt (status, duration, error)."""
    with session_scope(engine) as session:
        query = select(WebhookDelivery, WebhookEvent.type).join(
            WebhookEvent, col(WebhookEvent.id) == col(WebhookDelivery.event_id)
        )
        if endpoint_id is not None:
            get_endpoint(session, endpoint_id)
            query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
        rows = session.exec(query.order_by(col(WebhookDelivery.id).desc()).limit(limit)).all()
        ids = [d.id for d, _ in rows]
        attempts: dict[int, list[WebhookAttemptPublic]] = {i: [] for i in ids if i is not None}
        for a in session.exec(
            select(WebhookAttempt)
            .where(col(WebhookAttempt.delivery_id).in_(ids))
            .order_by(col(WebhookAttempt.id))
        ):
            attempts[a.delivery_id].append(WebhookAttemptPublic.model_validate(a.model_dump()))
        return [
            WebhookDeliveryPublic(
                id=d.id or 0,
                event_id=d.event_id,
                event_type=event_type,
                endpoint_id=d.endpoint_id,
                round=d.round,
                status=DeliveryStatus(d.status),
                created_at=d.created_at,
                finished_at=d.finished_at,
                last_error=d.last_error,
                attempts=attempts.get(d.id or 0, []),
            )
            for d, event_type in rows
        ]
