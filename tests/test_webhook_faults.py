"""Webhooks when the worker dies: a real `tandem worker` process, SIGKILLed while a
delivery is in flight, and started again. The event is delivered, with the same
webhook-id, and the digest schedule is still the one made at the first start."""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path
from subprocess import PIPE, STDOUT

import pytest
from sqlmodel import Session

from db.engine import make_engine, session_scope
from db.migrate import upgrade
from db.webhooks import add_endpoint, list_deliveries, record_event
from models.delivery import DeliveryStatus
from models.events import CustomerRef, CustomerSignedUpData, EventType
from models.webhooks import WebhookEndpointIn, WebhookEvent
from settings import Settings
from tests.fault_support import TANDEM, DevServer, WorkerProcess, eventually, tandem_env
from tests.webhook_support import Answer, receiving
from workflows.digest import SCHEDULE_ID

pytestmark = pytest.mark.slow


async def tandem(env: dict[str, str], cwd: Path, *args: str) -> str:
    """Run `tandem ...` as an operator would; its output, or a failure with it."""
    process = await asyncio.create_subprocess_exec(
        TANDEM, *args, env=env, cwd=cwd, stdout=PIPE, stderr=STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, output.decode()
    return output.decode()


async def test_worker_killed_mid_delivery_delivers_with_the_same_id(tmp_path: Path) -> None:
    server = DevServer(tmp_path / "temporal.db", tmp_path / "server.log")
    database_url = f"sqlite:///{tmp_path / 'tandem.db'}"
    queue = f"webhook-faults-{uuid.uuid4().hex[:6]}"
    env = tandem_env(server.address, tmp_path / "var", database_url, queue)
    env.update(
        TANDEM_WEBHOOKS_ALLOW_PRIVATE="true",
        TANDEM_WEBHOOKS_DISPATCH_SECONDS="0.1",
        TANDEM_WEBHOOKS_ATTEMPT_TIMEOUT_SECONDS="2",
        TANDEM_WEBHOOKS_FIRST_RETRY_SECONDS="0.1",
        TANDEM_WEBHOOKS_LONGEST_RETRY_SECONDS="0.5",
    )
    worker = WorkerProcess(env, tmp_path / "worker.log", cwd=tmp_path)
    engine = make_engine(database_url)
    settings = Settings(_env_file=None, temporal_address=server.address, task_queue=queue)  # type: ignore[call-arg]
    with receiving() as receiver:
        try:
            server.start()
            upgrade(engine)
            client = await server.ready(settings)
            worker.start()
            endpoint = add_endpoint(engine, WebhookEndpointIn(url=receiver.url()), True)
            held = threading.Event()
            receiver.script = [Answer(200, hold=held)]  # the first attempt never gets an answer
            customer = CustomerRef(id="c-1", company="Acme", link="/app/customers/c-1")
            with session_scope(engine) as session:
                data = CustomerSignedUpData(customer=customer, plan="default")
                record_event(session, EventType.customer_signed_up, data, "c-1")

            await eventually(
                lambda: receiver.received, 30, lambda: f"first attempt\n{worker.log()}"
            )
            worker.kill()  # mid-delivery: the receiver has the request, no one awaits the answer
            held.set()
            worker.start()  # the second start

            await eventually(
                lambda: len(receiver.received) >= 2, 60, lambda: f"the retry\n{worker.log()}"
            )
            first, second = receiver.received[:2]
            with Session(engine) as session:
                event = session.get(WebhookEvent, first.webhook_id)
            assert event is not None and first.webhook_id == second.webhook_id
            assert second.verified(endpoint.secret)["data"]["customer"]["id"] == "c-1"

            def delivered() -> bool:
                rows = list_deliveries(engine, endpoint.id)
                return bool(rows) and rows[0].status is DeliveryStatus.delivered

            await eventually(delivered, 30, "the delivery recorded as delivered")
            [delivery] = list_deliveries(engine, endpoint.id)
            # The killed attempt left no record; the one that answered did.
            assert [a.status_code for a in delivery.attempts] == [200]
            assert delivery.attempts[0].attempt >= 2

            ids = [s.id async for s in await client.list_schedules()]
            assert ids.count(SCHEDULE_ID) == 1  # made at the first start, kept at the second

            # The CLI against the running worker: a test event, and digests at once.
            tested = await tandem(env, tmp_path, "webhooks", "test", endpoint.id)
            assert "delivered after 1 attempt(s)" in tested
            assert receiver.received[-1].verified(endpoint.secret)["type"] == "webhook.test"
            sent = await tandem(env, tmp_path, "digests", "send", "--now")
            assert sent.strip() == ""  # no customers, so no managers to tell
            scheduled = await tandem(env, tmp_path, "digests", "schedule")
            assert "Digests every 7 day(s) at 08:00 UTC" in scheduled
        finally:
            worker.cleanup()
            server.cleanup()
            engine.dispose()
