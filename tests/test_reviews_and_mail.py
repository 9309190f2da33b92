"""Review calls, renewal checkpoints and a mail server that is down, on the real
time-skipping server with the real worker."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import Session, select
from temporalio import activity
from temporalio.api.enums.v1 import EventType

from activities.contracts import EmailReceipt, EmailRequest
from activities.email import EmailActivities, Written
from db.queries import latest_goal_values, latest_success_plan
from models.customer import SignUp
from models.plan import PlanTemplate
from models.tables import OutboxEmail, TimelineEvent
from settings import Settings
from tests.conftest import Harness, Lifecycle
from tests.test_email import Collector
from tests.test_lifecycle import GOOD, UNHAPPY_BUT_PROFITABLE, kickoff_result
from worker import build_worker


async def test_review_call_records_goal_progress_and_revises_the_plan(acme: Lifecycle) -> None:
    await acme.sign_up()
    await acme.advance(hours=1)
    await acme.complete(acme.task_id("kickoff"), kickoff_result())
    await acme.advance(days=91)
    review = acme.task_id("review_call-1")
    assert acme.task_row(review).status == "open"

    revised = kickoff_result()["success_plan"]
    revised["success_definition"] = "Every rep and every manager works from the pipeline"
    await acme.complete(
        review,
        {
            "kind": "review_call",
            "notes": "EMEA team live",
            "goal_progress": {"active_reps": 9},
            "next_steps": ["Train the managers"],
            "revised_plan": revised,
        },
    )
    with Session(acme.h.engine) as session:
        assert latest_goal_values(session, acme.customer_id) == {"active_reps": 9}
        plan = latest_success_plan(session, acme.customer_id)
    assert plan is not None and plan.success_definition.startswith("Every rep and every manager")
    status = await acme.status()
    assert status.success_plan.success_definition == plan.success_definition


async def test_manager_rating_far_from_the_assessment_is_escalated(acme: Lifecycle) -> None:
    await acme.sign_up()
    await acme.advance(days=150)
    await acme.signals(**UNHAPPY_BUT_PROFITABLE)
    await acme.advance(days=40)  # the check-in on day 180 scores it; checkpoint on day 185
    status = await acme.status()
    assert status.last_assessment.quadrant.value == "unhappy_profitable"
    checkpoint = acme.task_id("renewal_checkpoint-180d")
    # The manager sees it the other way round on both axes: more than a quadrant apart.
    await acme.complete(
        checkpoint, {"kind": "renewal_checkpoint", "manager_rating": "happy_unprofitable"}
    )
    await acme.advance(hours=1)
    escalations = [e for e in acme.emails("task_escalation") if "disagreement" in e.key]
    assert len(escalations) == 1 and "happy_unprofitable" in escalations[0].text_body
    with Session(acme.h.engine) as session:
        kinds = {e.kind for e in session.exec(select(TimelineEvent)).all()}
    assert "rating_disagreement" in kinds


async def test_a_close_rating_is_not_escalated(acme: Lifecycle) -> None:
    await acme.sign_up()
    await acme.advance(days=150)
    await acme.signals(**GOOD)
    await acme.advance(days=40)
    await acme.complete(
        acme.task_id("renewal_checkpoint-180d"),
        {"kind": "renewal_checkpoint", "manager_rating": "neutral"},
    )
    await acme.advance(hours=1)
    assert [e for e in acme.emails("task_escalation") if "disagreement" in e.key] == []


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def relay_settings(tmp_path: Path, name: str) -> Settings:
    """A worker's settings with mail going to 127.0.0.1 on a port of its own, which
    nothing answers until the test starts a relay there."""
    return Settings(
        var_dir=tmp_path / name,
        smtp_host="127.0.0.1",
        smtp_port=closed_port(),
        smtp_starttls=False,
        workflow_sandbox=True,
    )


def customer_of(
    harness: Harness, settings: Settings, queue: str, company: str, plan: PlanTemplate
) -> Lifecycle:
    """A new customer on the worker at `queue`, terminated with the harness's own."""
    name = company.split()[0].lower()
    customer = Lifecycle(
        Harness(harness.env, settings, harness.engine, queue),
        SignUp(
            company=company,
            contact_name=name.title(),
            plan="default",
            email=f"{name}-{uuid.uuid4().hex[:6]}@{name}.test",
        ),
        plan,
    )
    harness.workflow_ids |= customer.h.workflow_ids
    return customer


async def test_mail_server_down_never_blocks_the_lifecycle(
    harness: Harness, default_plan, tmp_path
) -> None:
    """With SMTP unreachable the lifecycle goes on: tasks open, later steps run; the
    emails wait in the outbox, retried with backoff, and a give-up is on the timeline."""
    down = relay_settings(tmp_path, "down")
    queue = f"{harness.task_queue}-down"
    async with build_worker(harness.client, down, harness.engine, task_queue=queue):
        customer = customer_of(harness, down, queue, "Offline Ltd", default_plan)
        receipt = await customer.sign_up()  # returns: the welcome is composed, not sent
        assert receipt.new
        await customer.advance(days=3, hours=12)
        status = await customer.status()
        assert customer.task_id("kickoff") in {t.task_id for t in status.open_tasks}
        assert len(customer.emails("tutorial_nudge")) == 1  # the day-3 step ran regardless
        with Session(harness.engine) as session:
            welcome = session.exec(
                select(OutboxEmail).where(
                    OutboxEmail.key.endswith(":t1:welcome"),
                    OutboxEmail.customer_id == customer.customer_id,
                )
            ).one()
            failed = session.exec(
                select(TimelineEvent).where(
                    TimelineEvent.kind == "email_failed",
                    TimelineEvent.customer_id == customer.customer_id,
                )
            ).all()
        assert welcome.status == "pending" and welcome.attempts > 1
        assert "Connection refused" in (welcome.last_error or "")
        assert failed, "after the delivery window the give-up is on the timeline"
        await customer.h.terminate_all()


async def test_sign_up_goes_on_as_a_regular_activity_when_its_local_one_keeps_failing(
    acme: Lifecycle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sign-up's step is a local activity with a few quick tries. When they all fail
    (the records database down, say), a regular activity takes over: the server keeps
    retrying it without adding to the lifecycle's history, where a local activity's
    retries would add a timer every minute."""
    store_and_send = EmailActivities.store_and_send
    tries: list[bool] = []

    def unreachable_when_local(
        self: EmailActivities, requests: list[EmailRequest], write: Any = Written.none
    ) -> list[EmailReceipt]:
        if requests[0].template == "welcome":
            tries.append(activity.info().is_local)
        if activity.info().is_local:
            raise OSError("the records database does not answer")
        return store_and_send(self, requests, write)

    monkeypatch.setattr(EmailActivities, "store_and_send", unreachable_when_local)
    receipt = await acme.sign_up()
    assert receipt.new
    assert tries == [True, True, True, False]
    history = await acme.handle().fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled[:1] == ["open_account"]
    with Session(acme.h.engine) as session:
        stored = session.exec(select(OutboxEmail.template, OutboxEmail.status)).all()
    assert ("welcome", "sent") in stored


class SlowRelay(Collector):
    """Answers every recipient and every message after a pause (well inside the 5 s
    a sign-up's first attempt waits per round trip)."""

    pause = 3.5

    async def handle_RCPT(self, *args: Any) -> str:
        await asyncio.sleep(self.pause)
        return await super().handle_RCPT(*args)

    async def handle_DATA(self, *args: Any) -> str:
        await asyncio.sleep(self.pause)
        return await super().handle_DATA(*args)


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # about Temporal, not SQL
async def test_a_sign_up_that_outlasts_its_workflow_task_timeout_completes_once(
    harness: Harness, default_plan: PlanTemplate, tmp_path: Path
) -> None:
    """Sign-up's local activity runs inside the lifecycle's first workflow task. With a
    slow relay it takes longer than that task's 10 s timeout: the SDK keeps the task
    alive, and the activity runs once, each email sent once."""
    relay = SlowRelay()
    slow = relay_settings(tmp_path, "slow")
    controller = Controller(relay, hostname="127.0.0.1", port=slow.smtp_port)
    controller.start()
    queue = f"{harness.task_queue}-slow"
    try:
        async with build_worker(harness.client, slow, harness.engine, task_queue=queue):
            customer = customer_of(harness, slow, queue, "Slowpoke Ltd", default_plan)
            started = time.monotonic()
            receipt = await customer.sign_up()
            took = time.monotonic() - started
            history = await customer.handle().fetch_history()
            await customer.h.terminate_all()
    finally:
        controller.stop()
    assert receipt.new
    assert took > 10, "the relay was meant to outlast the workflow task timeout"
    assert len(relay.envelopes) == 2  # the welcome and the manager's notice, once each
    kinds = [e.event_type for e in history.events]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT not in kinds
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in kinds
    markers = [
        e
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
        and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    assert len(markers) == 1
