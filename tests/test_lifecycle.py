"""The lifecycle on the real time-skipping Temporal server, with the real worker,
activities and a real SQLite file: a year of a customer's life in seconds."""

from __future__ import annotations

from sqlmodel import Session, select

from db.queries import latest_success_plan
from models.tables import AssessmentRecord, Customer
from models.tasks import example_result
from tests.conftest import Lifecycle
from workflows.lifecycle import CustomerLifecycle

GOOD = dict(nps=[9, 10], csat=5, usage=[100, 160], fcr=0.9, revenue=10000, cost=3000)
UNHAPPY_BUT_PROFITABLE = dict(
    nps=[2, 3], csat=1, usage=[160, 60], fcr=0.3, revenue=10000, cost=3000
)


def kickoff_result() -> dict:
    result = example_result("kickoff")
    result["success_plan"]["goals"][0]["target_date"] = "2030-01-01"
    return result


async def test_full_first_year_into_second_term(acme: Lifecycle) -> None:
    receipt = await acme.sign_up()
    assert receipt.new and receipt.phase.value == "onboarding"
    (welcome,) = acme.emails("welcome")
    # One email at sign-up: the tutorials and the kickoff invitation, by the due date.
    assert "First steps: set up your workspace" in welcome.text_body
    assert "invite you to a kickoff call" in welcome.text_body

    await acme.advance(hours=1)
    status = await acme.status()
    kickoff = acme.task_id("kickoff")
    assert [t.task_id for t in status.open_tasks] == [kickoff]
    due = acme.task_row(kickoff).due_at
    assert f"45 minutes before {due.day} {due:%B %Y}?" in welcome.text_body
    # The manager is told of the kickoff; the customer gets no second and third email.
    assert sorted(e.template for e in acme.emails()) == ["task_assigned", "welcome"]

    # The kickoff's result is the customer's own definition of success.
    await acme.complete(kickoff, kickoff_result())
    with Session(acme.h.engine) as session:  # the caller reads its own write at once
        plan = latest_success_plan(session, acme.customer_id)
    assert plan is not None and plan.success_definition.startswith("Every rep logs")

    for tutorial in ("first-steps", "import-data"):
        await acme.handle().signal(CustomerLifecycle.tutorial_completed, tutorial)
    await acme.advance(hours=1)
    status = await acme.status()
    assert status.onboarded and status.phase.value == "adopting"

    # Month one: a happy, profitable customer; the success playbook opens a rep task.
    await acme.signals(**GOOD)
    await acme.advance(days=31)
    status = await acme.status()
    assert status.last_assessment is not None
    assert status.last_assessment.quadrant.value == "happy_profitable"
    assert acme.task_row(acme.task_id("playbook-check_in-1")) is not None
    assert len(acme.emails("checkin_report")) == 1

    # Four months on the old signals have aged out and new ones say: unhappy.
    await acme.advance(days=90)
    await acme.signals(**UNHAPPY_BUT_PROFITABLE)
    await acme.advance(days=30)
    status = await acme.status()
    assert status.last_assessment.quadrant.value == "unhappy_profitable"
    alignment = [t for t in status.open_tasks if t.playbook == "unhappy_profitable"]
    assert len(alignment) == 1 and "Expectation-alignment" in alignment[0].title
    with Session(acme.h.engine) as session:
        assert session.get(Customer, acme.customer_id).at_risk
        assert len(session.exec(select(AssessmentRecord)).all()) >= 5

    # Renewal opens 90 days before the term ends, with checkpoints for the manager.
    await acme.advance(days=130)
    status = await acme.status()
    assert status.phase.value == "renewal"
    renewal = acme.task_id("renewal")
    assert renewal in {t.task_id for t in status.open_tasks}
    assert acme.task_row(acme.task_id("renewal_checkpoint-180d")) is not None
    invite = acme.emails("renewal_invite")
    assert len(invite) == 1 and "Every rep logs" in invite[0].text_body

    await acme.complete(
        renewal,
        {"kind": "renewal", "outcome": "renewed", "reason": "Seven of twelve reps are live"},
    )
    await acme.advance(days=100)
    status = await acme.status()
    assert status.term == 2 and status.phase.value == "adopting"
    assert status.success_plan is not None  # carried into the next term
    assert len(acme.emails("welcome")) == 1  # no second welcome in term 2
    with Session(acme.h.engine) as session:
        row = session.get(Customer, acme.customer_id)
        assert row.term == 2 and row.renewal_outcome == "renewed"
