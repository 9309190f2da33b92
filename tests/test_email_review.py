"""Review before send: under a plan that asks for it, customer emails wait for the
account's manager (approve, edit or reject) or for the deadline."""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session, select

from models.plan import PlanTemplate
from models.tables import AuditEntry, OutboxEmail
from tests.conftest import Lifecycle


def reviewed(plan: PlanTemplate, on_deadline: str = "send") -> PlanTemplate:
    review = plan.email_review.model_copy(update={"enabled": True, "on_deadline": on_deadline})
    return plan.model_copy(update={"email_review": review})


def welcome_row(acme: Lifecycle) -> OutboxEmail:
    [row] = acme.emails("welcome")
    return row


async def review_task(acme: Lifecycle) -> str:
    status = await acme.status()
    [task] = [
        t
        for t in status.open_tasks
        if t.kind.value == "email_review" and t.email_key and t.email_key.endswith(":welcome")
    ]
    return task.task_id


async def test_manager_edits_then_it_goes(acme: Lifecycle) -> None:
    acme.plan = reviewed(acme.plan)
    await acme.sign_up()
    await acme.advance(minutes=10)
    assert welcome_row(acme).status == "held"
    staff = [e for e in acme.emails() if e.template == "task_assigned"]
    assert staff and all(e.status == "sent" for e in staff)  # staff mail is never held

    task_id = await review_task(acme)
    await acme.complete(
        task_id,
        {
            "kind": "email_review",
            "decision": "edit",
            "subject": "Welcome, Ada",
            # Edited from the review page's copy, which shows the footer too.
            "text": "Hi Ada, welcome!\n\n-- \nTo stop these emails, unsubscribe here: x",
        },
    )
    await acme.advance(minutes=10)
    row = welcome_row(acme)
    assert (row.status, row.subject) == ("sent", "Welcome, Ada")
    assert row.text_body.startswith("Hi Ada, welcome!\n\n-- \n")
    assert "Hi Ada, welcome!" in row.html_body
    # The manager's words replace the email's, not its footer: the way out stays, once.
    [text_link] = re.findall(r"unsubscribe here: (\S+)", row.text_body)
    assert "/u/" in text_link and f'href="{text_link}"' in row.html_body
    with Session(acme.h.engine) as session:
        audit = session.exec(select(AuditEntry).where(AuditEntry.subject == task_id)).all()
    assert [(a.actor, a.action) for a in audit] == [("ada.manager", "task.completed")]


async def test_rejected_email_is_dropped(acme: Lifecycle) -> None:
    acme.plan = reviewed(acme.plan)
    await acme.sign_up()
    await acme.advance(minutes=10)
    await acme.complete(await review_task(acme), {"kind": "email_review", "decision": "reject"})
    await acme.advance(minutes=10)
    assert welcome_row(acme).status == "dropped"


@pytest.mark.parametrize(("on_deadline", "status"), [("send", "sent"), ("drop", "dropped")])
async def test_deadline_sends_or_drops(acme: Lifecycle, on_deadline: str, status: str) -> None:
    acme.plan = reviewed(acme.plan, on_deadline)
    await acme.sign_up()
    await acme.advance(hours=25)  # the default deadline is 24 hours
    assert welcome_row(acme).status == status
    task = acme.task_row(acme.task_id("email_review-t1:welcome"))
    assert task is not None and task.status == "cancelled"
