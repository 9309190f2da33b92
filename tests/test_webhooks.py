"""Outbound webhooks end to end: events recorded in the outbox, delivered by the real
worker on Temporal's dev server to a real HTTP receiver on loopback, verified there with
the Standard Webhooks library. Retries are kept short by settings, not by sleeping."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from db.engine import session_scope
from db.webhooks import (
    InvalidEndpoint,
    add_endpoint,
    list_deliveries,
    prune_events,
    record_event,
    redeliver,
    rotate_secret,
)
from models.delivery import DeliveryStatus
from models.events import CustomerEventData, CustomerRef, EventType, TaskEventData, TaskRef
from models.webhooks import (
    EndpointKind,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryPublic,
    WebhookEndpoint,
    WebhookEndpointIn,
    WebhookEvent,
)
from settings import Settings
from stack import find_binary
from tests.fault_support import eventually
from tests.webhook_support import Answer, Received, Receiver, receiving
from worker import build_worker


@pytest.fixture(scope="module")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's dev server: real retries with real (short) delays."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"), data_converter=pydantic_data_converter
    )
    yield env
    await env.shutdown()


def fast(settings: Settings) -> Settings:
    return settings.model_copy(
        update=dict(
            webhooks_allow_private=True,
            webhooks_dispatch_seconds=0.05,
            webhooks_attempt_timeout_seconds=2,
            webhooks_first_retry_seconds=0.05,
            webhooks_longest_retry_seconds=0.2,
            webhooks_give_up_seconds=4,
        )
    )


class Rig:
    def __init__(self, settings: Settings, engine: Engine, receiver: Receiver) -> None:
        self.settings, self.engine, self.receiver = settings, engine, receiver

    def endpoint(
        self,
        path: str = "/hook",
        events: list[str] | None = None,
        kind: EndpointKind = EndpointKind.webhook,
    ) -> WebhookEndpoint:
        spec = WebhookEndpointIn(url=self.receiver.url(path), events=events or [], kind=kind)
        return add_endpoint(self.engine, spec, allow_private=True)

    def emit(self, type: EventType = EventType.customer_signed_up, company: str = "Acme") -> str:
        customer = CustomerRef(
            id="c-1", company=company, owner="ada@team.test", link="/app/customers/c-1"
        )
        data: CustomerEventData = CustomerEventData(customer=customer)
        if type.value.startswith("task."):
            task = TaskRef(
                id="c-1:t1:kickoff",
                kind="kickoff",
                title="Kickoff call with Acme",
                owner_role="manager",
                owner="ada@team.test",
                due_at=datetime(2026, 12, 9, tzinfo=UTC),
                link="/app/tasks/c-1:t1:kickoff",
            )
            data = TaskEventData(customer=customer, task=task)
        key = uuid.uuid4().hex
        with session_scope(self.engine) as session:
            record_event(session, type, data, key)
        with Session(self.engine) as session:
            row = session.exec(
                select(WebhookEvent).where(WebhookEvent.key == f"{type.value}:{key}")
            ).one()
            return row.id

    async def received(
        self, count: int, path: str = "/hook", timeout: float = 20
    ) -> list[Received]:
        return await eventually(
            lambda: len(self.receiver.at(path)) >= count and self.receiver.at(path),
            timeout,
            lambda: f"{count} requests at {path}; got {len(self.receiver.at(path))}",
            0.05,
        )

    async def delivery_settled(
        self, endpoint_id: str, timeout: float = 20
    ) -> list[WebhookDeliveryPublic]:
        def settled() -> list[WebhookDeliveryPublic] | None:
            rows = list_deliveries(self.engine, endpoint_id)
            return rows if rows and all(d.status != DeliveryStatus.pending for d in rows) else None

        return await eventually(settled, timeout, f"deliveries to {endpoint_id} settled", 0.05)

    def endpoint_row(self, endpoint_id: str) -> WebhookEndpoint:
        with Session(self.engine) as session:
            row = session.get(WebhookEndpoint, endpoint_id)
            assert row is not None
            return row


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


@pytest.fixture
async def rig(
    dev_env: WorkflowEnvironment, settings: Settings, engine: Engine, receiver: Receiver
) -> AsyncIterator[Rig]:
    settings = fast(settings)
    queue = f"webhooks-{uuid.uuid4().hex[:8]}"
    async with build_worker(dev_env.client, settings, engine, task_queue=queue):
        yield Rig(settings, engine, receiver)


async def test_signed_thin_payload_and_type_filters(rig: Rig) -> None:
    everything = rig.endpoint("/all")
    tasks_only = rig.endpoint("/tasks", events=["task.opened", "task.escalated"])
    signed_up = rig.emit(EventType.customer_signed_up)
    opened = rig.emit(EventType.task_opened)

    got = await rig.received(2, "/all")
    await rig.received(1, "/tasks")
    assert {r.webhook_id for r in got} == {signed_up, opened}
    for request in got:
        payload = request.verified(everything.secret)
        assert set(payload) == {"type", "timestamp", "data"}
        assert payload["data"]["customer"]["link"] == rig.settings.public_url + "/app/customers/c-1"
        assert request.headers["content-type"] == "application/json"
    [task_request] = rig.receiver.at("/tasks")
    assert task_request.webhook_id == opened
    assert task_request.verified(tasks_only.secret)["type"] == "task.opened"
    # Another endpoint's secret does not verify it.
    with pytest.raises(WebhookVerificationError):
        task_request.verified(everything.secret)
    await rig.delivery_settled(tasks_only.id)
    assert len(rig.receiver.at("/tasks")) == 1


async def test_retries_after_500_then_success_with_the_same_id(rig: Rig) -> None:
    endpoint = rig.endpoint()
    rig.receiver.script = [Answer(500), Answer(500)]
    event_id = rig.emit()
    got = await rig.received(3)
    assert [r.webhook_id for r in got] == [event_id] * 3
    for request in got:
        request.verified(endpoint.secret)
    [delivery] = await rig.delivery_settled(endpoint.id)
    assert delivery.status is DeliveryStatus.delivered
    assert [a.status_code for a in delivery.attempts] == [500, 500, 200]
    assert delivery.attempts[0].error and "HTTP 500" in delivery.attempts[0].error
    assert delivery.attempts[-1].error is None
    assert all(a.duration_ms >= 0 for a in delivery.attempts)


async def test_410_disables_the_endpoint_with_its_reason(rig: Rig) -> None:
    endpoint = rig.endpoint()
    rig.receiver.script = [Answer(410)]
    rig.emit()
    [delivery] = await rig.delivery_settled(endpoint.id)
    assert delivery.status is DeliveryStatus.failed
    row = rig.endpoint_row(endpoint.id)
    assert not row.enabled and "410" in (row.disabled_reason or "")
    rig.emit()  # nothing goes to a disabled endpoint
    await eventually(
        lambda: _undispatched(rig.engine) == 0, 10, "the second event dispatched", 0.05
    )
    assert len(rig.receiver.received) == 1


async def test_retry_after_is_honoured(rig: Rig) -> None:
    endpoint = rig.endpoint()
    # The backoff alone would retry within 0.2 s (webhooks_longest_retry_seconds).
    rig.receiver.script = [Answer(429, {"Retry-After": "1"}), Answer(503, {"Retry-After": "1"})]
    rig.emit()
    first, second, third = await rig.received(3)
    assert second.at - first.at >= 1.0 and third.at - second.at >= 1.0
    [delivery] = await rig.delivery_settled(endpoint.id)
    assert [a.status_code for a in delivery.attempts] == [429, 503, 200]


async def test_retries_run_out_and_disable_the_endpoint(rig: Rig) -> None:
    endpoint = rig.endpoint()
    rig.receiver.script = [Answer(500)] * 1000
    rig.emit()
    [delivery] = await rig.delivery_settled(endpoint.id, timeout=30)
    assert delivery.status is DeliveryStatus.failed and len(delivery.attempts) >= 2
    row = rig.endpoint_row(endpoint.id)
    assert not row.enabled
    assert row.disabled_reason and "retries ran out" in row.disabled_reason
    assert "HTTP 500" in row.disabled_reason


async def test_rotation_sends_both_signatures(rig: Rig) -> None:
    endpoint = rig.endpoint()
    rotated = rotate_secret(rig.engine, endpoint.id, timedelta(hours=1))
    assert rotated.secret != endpoint.secret
    rig.emit()
    [request] = await rig.received(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert request.verified(endpoint.secret) == request.verified(rotated.secret)
    # Once the overlap is over, only the new secret signs.
    rotate_secret(rig.engine, endpoint.id, timedelta(0))
    newest = rig.endpoint_row(endpoint.id).secret
    rig.emit()
    _, later = await rig.received(2)
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    later.verified(newest)
    with pytest.raises(WebhookVerificationError):
        later.verified(rotated.secret)


async def test_redelivery_sends_the_same_webhook_id_again(rig: Rig) -> None:
    endpoint = rig.endpoint()
    event_id = rig.emit()
    [delivery] = await rig.delivery_settled(endpoint.id)
    again = redeliver(rig.engine, delivery.id, rig.settings.public_url)
    assert again.round == 1
    first, second = await rig.received(2)
    assert first.webhook_id == second.webhook_id == event_id
    assert first.verified(endpoint.secret) == second.verified(endpoint.secret)
    rounds = await rig.delivery_settled(endpoint.id)
    assert sorted(d.round for d in rounds) == [0, 1]


def age(engine: Engine, event_id: str, days: int) -> None:
    with session_scope(engine) as session:
        event = session.get(WebhookEvent, event_id)
        assert event is not None
        event.created_at = datetime.now(UTC) - timedelta(days=days)
        session.add(event)


def kept(engine: Engine) -> tuple[set[str], int, int]:
    """The events left, and how many deliveries and attempts."""
    with Session(engine) as session:
        events = set(session.exec(select(WebhookEvent.id)).all())
        deliveries = session.exec(select(func.count()).select_from(WebhookDelivery)).one()
        attempts = session.exec(select(func.count()).select_from(WebhookAttempt)).one()
        return events, deliveries, attempts


async def test_old_delivered_events_are_pruned_and_unfinished_ones_kept(rig: Rig) -> None:
    endpoint = rig.endpoint()
    old, recent, retrying = rig.emit(), rig.emit(), rig.emit()
    assert len(await rig.delivery_settled(endpoint.id)) == 3
    for event_id in (old, retrying):
        age(rig.engine, event_id, days=40)
    with session_scope(rig.engine) as session:  # as if its delivery were still retrying
        row = session.exec(
            select(WebhookDelivery).where(WebhookDelivery.event_id == retrying)
        ).one()
        row.finished_at = None
        session.add(row)
    assert prune_events(rig.engine, days=30) == 1
    assert kept(rig.engine) == ({recent, retrying}, 2, 2)
    assert prune_events(rig.engine, days=30) == 0


async def test_the_worker_prunes_at_its_start(
    rig: Rig, dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    endpoint = rig.endpoint()
    old, recent = rig.emit(), rig.emit()
    await rig.delivery_settled(endpoint.id)
    age(rig.engine, old, days=rig.settings.webhooks_retention_days + 1)
    queue = f"webhooks-{uuid.uuid4().hex[:8]}"
    async with build_worker(dev_env.client, fast(settings), rig.engine, task_queue=queue):
        await eventually(lambda: old not in kept(rig.engine)[0], 10, "the old event pruned", 0.05)
    assert recent in kept(rig.engine)[0]


async def test_slack_endpoint_gets_block_kit(rig: Rig) -> None:
    rig.endpoint("/slack", events=["task.escalated"], kind=EndpointKind.slack)
    rig.emit(EventType.task_escalated, company="Globex")
    [request] = await rig.received(1, "/slack")
    message = request.json()
    assert "webhook-signature" not in request.headers
    assert "Globex" in message["text"]
    blocks = message["blocks"]
    assert [b["type"] for b in blocks][:3] == ["header", "section", "section"]
    header = blocks[0]["text"]
    assert header["type"] == "plain_text" and len(header["text"]) <= 150
    assert "Task escalated" in header["text"]
    for block in blocks:
        assert block["type"] in {"header", "section", "actions", "context", "divider"}
        if block["type"] == "section":
            texts = [block["text"]] if "text" in block else block["fields"]
            assert all(t["type"] in {"mrkdwn", "plain_text"} and t["text"] for t in texts)
    fields = " ".join(f["text"] for f in blocks[2]["fields"])
    assert "ada@team.test" in fields  # the task's owner
    [button] = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert button["type"] == "button"
    assert button["url"] == rig.settings.public_url + "/app/tasks/c-1:t1:kickoff"


def _undispatched(engine: Engine) -> int:
    with Session(engine) as session:
        query = select(func.count()).select_from(WebhookEvent)
        return session.exec(query.where(col(WebhookEvent.dispatched_at).is_(None))).one()


def _endpoints(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(WebhookEndpoint)).one()


@pytest.mark.parametrize(
    ("url", "events", "allow_private", "field", "words"),
    [
        ("not a url", [], True, "url:", "not an http(s) URL"),
        ("ftp://example.test/x", [], True, "url:", "not an http(s) URL"),
        (
            "http://127.0.0.1:9/hook",
            ["task.opened", "task.exploded"],
            True,
            "events:",
            "task.exploded",
        ),
        ("http://127.0.0.1:9/hook", [], False, "url:", "loopback, private or link-local"),
        ("http://10.1.2.3/hook", [], False, "url:", "10.1.2.3"),
        ("http://169.254.169.254/latest", [], False, "url:", "link-local"),
        ("http://user:pw@127.0.0.1/hook", [], True, "url:", "credentials"),
    ],
)
def test_bad_endpoints_are_refused_and_nothing_stored(
    engine: Engine, url: str, events: list[str], allow_private: bool, field: str, words: str
) -> None:
    with pytest.raises(InvalidEndpoint) as refused:
        add_endpoint(engine, WebhookEndpointIn(url=url, events=events), allow_private)
    assert str(refused.value).startswith(field) and words in str(refused.value)
    assert _endpoints(engine) == 0


def test_the_library_verifies_what_we_sign() -> None:
    """The signature is exactly the spec's: v1,base64(HMAC-SHA256(id.timestamp.body))."""
    import base64
    import hashlib
    import hmac

    from activities.webhooks import headers_for

    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    row = WebhookEndpoint(id="ep_1", url="http://x.test", secret=secret)
    body = '{"type":"task.opened","timestamp":"2026-12-02T00:00:00Z","data":{}}'
    headers = headers_for(row, "msg_1", body)
    signed = f"msg_1.{headers['webhook-timestamp']}.{body}".encode()
    expected = base64.b64encode(hmac.new(b"k" * 32, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    assert Webhook(secret).verify(body, headers) == {
        "type": "task.opened",
        "timestamp": "2026-12-02T00:00:00Z",
        "data": {},
    }


# -- through the API (admins) ----------------------------------------------------------------


@pytest.fixture
async def admin_api(rig: Rig, dev_env: WorkflowEnvironment) -> AsyncIterator[httpx.AsyncClient]:
    from api.main import create_app
    from db.staff import add_staff
    from db.tokens import create_token

    app = create_app(settings=rig.settings, engine=rig.engine, client=dev_env.client)
    add_staff(rig.engine, "Ada Admin", "admin@team.test", "admin", actor="test")
    _, admin = create_token(rig.engine, "Admin", "admin@team.test")
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {admin}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as http:
        yield http


async def test_endpoints_through_the_api(rig: Rig, admin_api: httpx.AsyncClient) -> None:
    from db.staff import add_staff
    from db.tokens import create_token

    add_staff(rig.engine, "Sam", "sam@team.test", "manager", actor="test")
    _, token = create_token(rig.engine, "Manager", "sam@team.test")
    manager = {"Authorization": f"Bearer {token}"}
    url = rig.receiver.url("/api")
    assert (
        await admin_api.post("/webhook-endpoints", json={"url": url}, headers=manager)
    ).status_code == 403

    created = await admin_api.post(
        "/webhook-endpoints", json={"url": url, "events": ["task.opened"], "description": "CRM"}
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_") and endpoint["events"] == ["task.opened"]
    listed = (await admin_api.get("/webhook-endpoints")).json()
    assert [e["id"] for e in listed] == [endpoint["id"]] and "secret" not in listed[0]

    sent = await admin_api.post(f"/webhook-endpoints/{endpoint['id']}/test")
    assert sent.status_code == 202
    [request] = await rig.received(1, "/api")
    assert request.webhook_id == sent.json()["event_id"]
    assert request.verified(endpoint["secret"])["type"] == "webhook.test"
    await rig.delivery_settled(endpoint["id"])
    [delivery] = (await admin_api.get(f"/webhook-endpoints/{endpoint['id']}/deliveries")).json()
    assert delivery["status"] == "delivered" and delivery["attempts"][0]["status_code"] == 200

    again = await admin_api.post(f"/webhook-deliveries/{delivery['id']}/redeliver")
    assert again.status_code == 202
    _, second = await rig.received(2, "/api")
    assert second.webhook_id == request.webhook_id

    rotated = (await admin_api.post(f"/webhook-endpoints/{endpoint['id']}/rotate-secret")).json()
    assert rotated["secret"] != endpoint["secret"] and rotated["rotating_until"]

    disabled = await admin_api.post(
        f"/webhook-endpoints/{endpoint['id']}/disable", json={"reason": "receiver moving"}
    )
    assert disabled.json()["enabled"] is False
    assert disabled.json()["disabled_reason"].startswith("receiver moving")
    refused = await admin_api.post(f"/webhook-endpoints/{endpoint['id']}/test")
    assert refused.status_code == 409 and "enable it first" in refused.json()["error"]["message"]
    enabled = await admin_api.post(f"/webhook-endpoints/{endpoint['id']}/enable")
    assert enabled.json()["enabled"] is True and enabled.json()["disabled_reason"] is None
    assert (await admin_api.get("/webhook-endpoints/ep_nope")).status_code == 404


async def test_api_refuses_bad_endpoints_and_stores_nothing(
    rig: Rig, admin_api: httpx.AsyncClient
) -> None:
    cases = [
        ({"url": "nope"}, "url"),
        ({"url": rig.receiver.url(), "events": ["task.exploded"]}, "events"),
        ({"url": rig.receiver.url(), "kind": "carrier-pigeon"}, "kind"),
    ]
    for body, field in cases:
        answer = await admin_api.post("/webhook-endpoints", json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["field"].endswith(field)
    assert (await admin_api.get("/webhook-endpoints")).json() == []


async def test_private_addresses_need_the_setting(
    dev_env: WorkflowEnvironment, settings: Settings, engine: Engine
) -> None:
    from api.main import create_app
    from db.staff import add_staff
    from db.tokens import create_token

    app = create_app(settings=settings, engine=engine, client=dev_env.client)
    add_staff(engine, "Ada Admin", "admin@team.test", "admin", actor="test")
    _, admin = create_token(engine, "Admin", "admin@team.test")
    headers = {"Authorization": f"Bearer {admin}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as http:
        answer = await http.post("/webhook-endpoints", json={"url": "http://127.0.0.1:9/x"})
        assert answer.status_code == 422
        error = answer.json()["error"]
        assert error["field"] == "url" and "TANDEM_WEBHOOKS_ALLOW_PRIVATE" in error["message"]
    assert _endpoints(engine) == 0


def test_openapi_documents_every_event(settings: Settings, engine: Engine) -> None:
    from api.main import create_app

    document = create_app(settings=settings, engine=engine).openapi()
    assert set(document["webhooks"]) == {t.value for t in EventType}
    schemas = document["components"]["schemas"]
    body = document["webhooks"]["quadrant.changed"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    envelope = schemas[ref]
    assert set(envelope["properties"]) == {"type", "timestamp", "data"}
    data = schemas[envelope["properties"]["data"]["$ref"].split("/")[-1]]
    assert {"customer", "previous_quadrant", "quadrant"} <= set(data["properties"])
