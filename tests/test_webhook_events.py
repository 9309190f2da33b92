"""The lifecycle's changes put their events in the webhook outbox, with the records they
report: a customer driven through the real worker on the time-skipping server."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

import lifecycles
from models.events import EVENT_DATA, EventType
from models.tables import Customer
from models.webhooks import WebhookEvent
from tests.conftest import Lifecycle
from tests.test_lifecycle import UNHAPPY_BUT_PROFITABLE, kickoff_result


def events(acme: Lifecycle) -> list[tuple[str, dict[str, Any]]]:
    with Session(acme.h.engine) as session:
        rows = session.exec(select(WebhookEvent).order_by(col(WebhookEvent.created_at))).all()
    found = [(row.type, row.data) for row in rows]
    for event_type, data in found:  # every payload is its documented shape
        EVENT_DATA[EventType(event_type)].model_validate(data)
    return [(t, d) for t, d in found if d["customer"]["id"] == acme.customer_id]


def of_type(acme: Lifecycle, event_type: EventType) -> list[dict[str, Any]]:
    return [data for t, data in events(acme) if t == event_type.value]


async def test_sign_up_and_a_late_task(acme: Lifecycle) -> None:
    await acme.sign_up()
    await acme.advance(hours=1)
    kickoff = acme.task_id("kickoff")
    assert [t for t, _ in events(acme)] == ["customer.signed_up", "task.opened"]
    [signed_up] = of_type(acme, EventType.customer_signed_up)
    assert signed_up["customer"]["company"] == "Acme Analytics"
    assert signed_up["customer"]["link"] == f"/app/customers/{acme.customer_id}"
    [opened] = of_type(acme, EventType.task_opened)
    assert opened["task"]["id"] == kickoff and opened["task"]["kind"] == "kickoff"

    await acme.advance(days=7)  # past the kickoff's due date (a week)
    assert len(of_type(acme, EventType.task_overdue)) == 1
    assert of_type(acme, EventType.task_escalated) == []
    await acme.advance(days=2)  # two days overdue: escalated
    [escalated] = of_type(acme, EventType.task_escalated)
    assert escalated["task"]["id"] == kickoff

    await acme.complete(kickoff, kickoff_result())
    [completed] = of_type(acme, EventType.task_completed)
    assert completed["completed_by"] == "ada.manager"
    # The reminder is not an event; nothing was recorded twice.
    kinds = [t for t, _ in events(acme)]
    assert len(kinds) == len(set(kinds)) == 5


async def test_assessment_move_risk_and_churn(acme: Lifecycle) -> None:
    await acme.sign_up()
    await acme.advance(hours=1)
    await acme.complete(acme.task_id("kickoff"), kickoff_result())
    await acme.signals(**UNHAPPY_BUT_PROFITABLE)
    await acme.advance(minutes=5)  # the signals are in the past
    await lifecycles.reassess(acme.h.client, acme.customer_id)

    [assessed] = of_type(acme, EventType.assessment_completed)
    assert assessed["quadrant"] == "unhappy_profitable"
    [moved] = of_type(acme, EventType.quadrant_changed)
    assert moved["previous_quadrant"] is None and moved["quadrant"] == "unhappy_profitable"
    [flagged] = of_type(acme, EventType.risk_flagged)
    assert flagged["quadrant"] == "unhappy_profitable"
    # Still at risk at the next assessment: assessed again, but no new move or flag.
    await lifecycles.reassess(acme.h.client, acme.customer_id)
    assert len(of_type(acme, EventType.assessment_completed)) == 2
    assert len(of_type(acme, EventType.quadrant_changed)) == 1
    assert len(of_type(acme, EventType.risk_flagged)) == 1

    await lifecycles.cancel(acme.h.client, acme.customer_id, "moved to a competitor")
    await acme.advance(hours=1)
    [churned] = of_type(acme, EventType.customer_churned)
    assert "moved to a competitor" in churned["reason"]


async def test_renewal_opened_and_decided(acme: Lifecycle) -> None:
    await acme.sign_up()
    await acme.advance(hours=1)
    await acme.complete(acme.task_id("kickoff"), kickoff_result())
    await acme.advance(days=280)  # the conversation opens 90 days before the term ends
    renewal = acme.task_id("renewal")
    [opened] = of_type(acme, EventType.renewal_opened)
    assert opened["task"]["id"] == renewal and opened["task"]["kind"] == "renewal"
    with Session(acme.h.engine) as session:
        customer = session.get(Customer, acme.customer_id)
    assert customer is not None
    assert datetime.fromisoformat(opened["term_end"]) == customer.term_end

    outcome = {"kind": "renewal", "outcome": "renewed", "reason": "Seven of twelve reps are live"}
    await acme.complete(renewal, outcome)
    [decided] = of_type(acme, EventType.renewal_decided)
    assert decided["outcome"] == "renewed" and decided["decided_by"] == "ada.manager"
    assert decided["reason"] == "Seven of twelve reps are live"
