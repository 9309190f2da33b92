"""A product event that completes a tutorial tells the customer's lifecycle, as
`tandem tutorial-done` does: the real worker on the time-skipping Temporal server."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import httpx
from sqlmodel import Session, select

from api.main import create_app
from db.sources import create_source
from models.product_events import TutorialCompletion
from models.tables import Customer
from plans import BUILT_IN
from tests.conftest import Harness, Lifecycle

RULE = """
[[events.tutorials]]
tutorial = "first-steps"
event = "Workspace Set Up"
properties = { invited = true }
"""


async def test_an_event_completes_a_tutorial_and_the_lifecycle_is_told(
    harness: Harness, acme: Lifecycle, tmp_path: Path
) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    plans.joinpath("default.toml").write_text(
        (BUILT_IN / "default.toml").read_text(encoding="utf-8") + RULE, encoding="utf-8"
    )
    await acme.sign_up()
    for _ in range(100):  # the account's record, written by the lifecycle's activity
        with Session(harness.engine) as session:
            if session.get(Customer, acme.customer_id) is not None:
                break
        await asyncio.sleep(0.05)
    settings = harness.settings.model_copy(
        update={"task_queue": harness.task_queue, "plans_dir": plans}
    )
    app = create_app(settings=settings, engine=harness.engine, client=harness.client)
    _, key = create_source(harness.engine, "web app")
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    call = {
        "userId": "ada",
        "event": "Workspace Set Up",
        "properties": {"invited": True},
        "context": {"groupId": acme.customer_id},
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        not_yet = {**call, "properties": {"invited": False}}
        assert (await http.post("/v1/track", json=not_yet, headers=auth)).status_code == 200
        assert (await acme.status()).tutorials_done == []
        assert (await http.post("/v1/track", json=call, headers=auth)).status_code == 200
    for _ in range(100):
        if (await acme.status()).tutorials_done:
            break
        await asyncio.sleep(0.05)
    assert (await acme.status()).tutorials_done == ["first-steps"]
    with Session(harness.engine) as session:
        told = session.exec(select(TutorialCompletion)).all()
    assert [(t.tutorial, t.outcome) for t in told] == [("first-steps", "told")]
