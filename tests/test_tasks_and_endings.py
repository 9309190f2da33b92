"""Tasks (reminders, escalation, refusals), repeated sign-ups, churn, cancellation and
continue-as-new, on the real time-skipping server with the real worker."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from lifecycles import LifecycleError
from models.customer import CustomerProfile, workflow_id_for
from models.lifecycle import LifecycleInput
from models.tables import Customer, SuccessPlanRecord, TimelineEvent
from tests.conftest import Lifecycle
from tests.test_lifecycle import kickoff_result
from workflows.lifecycle import CustomerLifecycle


async def test_late_kickoff_is_reminded_then_escalated(acme: Lifecycle) -> None:
    await acme.sign_up()
    kickoff = acme.task_id("kickoff")
    await acme.advance(days=5)
    row = acme.task_row(kickoff)
    assert row is not None and not row.reminded and not row.escalated

    await acme.advance(days=1, hours=1)  # a day before the due date (day 7)
    row = acme.task_row(kickoff)
    assert row.reminded and not row.escalated
    assert len(acme.emails("task_reminder")) == 1

    await acme.advance(days=3)  # two days overdue
    row = acme.task_row(kickoff)
    assert row.escalated and row.status == "open"
    escalation = acme.emails("task_escalation")
    assert len(escalation) == 1
    assert escalation[0].to_address == acme.h.settings.managers_email

    await acme.complete(kickoff, kickoff_result())  # late, but still accepted
    assert acme.task_row(kickoff).status == "done"


async def test_invalid_completions_are_refused_and_write_nothing(acme: Lifecycle) -> None:
    await acme.sign_up()
    await acme.advance(hours=1)
    kickoff = acme.task_id("kickoff")

    refusals = {
        "result.success_plan: Field required": {"kind": "kickoff"},
        "wrong kind": {"kind": "renewal", "outcome": "renewed", "reason": "x"},
        "target must be above baseline": {
            **kickoff_result(),
            "success_plan": {
                **kickoff_result()["success_plan"],
                "goals": [{**kickoff_result()["success_plan"]["goals"][0], "target": 1}],
            },
        },
    }
    for message, result in refusals.items():
        with pytest.raises(LifecycleError, match=message):
            await acme.complete(kickoff, result)
    with pytest.raises(LifecycleError, match="unknown task"):
        await acme.complete(acme.task_id("no-such-task"), kickoff_result())

    with Session(acme.h.engine) as session:
        assert session.exec(select(SuccessPlanRecord)).all() == []
        kinds = [e.kind for e in session.exec(select(TimelineEvent)).all()]
    assert "task_completed" not in kinds
    assert acme.task_row(kickoff).status == "open"

    receipt = await acme.complete(kickoff, kickoff_result())
    # Sent again as it was (a client that timed out and retries): the first receipt.
    assert await acme.complete(kickoff, kickoff_result()) == receipt
    # Anything else is a second completion of a task that is done.
    with pytest.raises(LifecycleError, match="is not open"):
        await acme.complete(kickoff, {**kickoff_result(), "notes": "a second opinion"})


async def test_unknown_customer_is_a_clear_error(acme: Lifecycle) -> None:
    with pytest.raises(LifecycleError, match="no running lifecycle"):
        await acme.complete("nobody-123456:t1:kickoff", kickoff_result())


async def test_repeated_signup_sends_one_welcome(acme: Lifecycle) -> None:
    first = await acme.sign_up()
    again = await acme.sign_up()
    assert first.new and not again.new
    assert first.customer_id == again.customer_id
    await acme.advance(hours=1)
    assert len(acme.emails("welcome")) == 1


async def test_churn_at_renewal_ends_the_lifecycle(acme: Lifecycle) -> None:
    await acme.sign_up()
    await acme.advance(days=276)
    renewal = acme.task_id("renewal")
    assert acme.task_row(renewal).status == "open"
    await acme.complete(renewal, {"kind": "renewal", "outcome": "churned", "reason": "Budget cut"})
    end = await acme.handle().result()
    assert end.reason == "churned at renewal: Budget cut" and end.terms == 1
    with Session(acme.h.engine) as session:
        row = session.get(Customer, acme.customer_id)
    assert row.phase == "churned" and "Budget cut" in row.churn_reason
    assert len(acme.emails("farewell")) == 1
    assert acme.task_row(acme.task_id("kickoff")).status == "cancelled"


async def test_cancel_mid_term(acme: Lifecycle) -> None:
    await acme.sign_up()
    await acme.advance(days=10)
    await acme.handle().signal(CustomerLifecycle.cancel, "Moved to a competitor")
    end = await acme.handle().result()
    assert end.reason == "cancelled: Moved to a competitor"
    with Session(acme.h.engine) as session:
        row = session.get(Customer, acme.customer_id)
    assert row.phase == "churned" and "Moved to a competitor" in row.churn_reason
    assert len(acme.emails("farewell")) == 1
    assert acme.task_row(acme.task_id("kickoff")).status == "cancelled"
    assert acme.emails("checkin_report") == []  # nothing scheduled runs after the end


async def test_continue_as_new_keeps_state(acme: Lifecycle) -> None:
    customer = CustomerProfile.from_signup(acme.signup)
    handle = await acme.h.client.start_workflow(
        CustomerLifecycle.run,
        LifecycleInput(customer=customer, plan=acme.plan, steps_per_run=2),
        id=workflow_id_for(acme.customer_id),
        task_queue=acme.h.task_queue,
    )
    first_run = (await handle.describe()).run_id
    await acme.advance(days=40)
    status = await acme.status()
    assert (await handle.describe()).run_id != first_run  # it has continued as new
    assert acme.task_id("kickoff") in {t.task_id for t in status.open_tasks}
    assert status.next_step is not None and status.next_step.key == "check_in-2"

    # A task opened in an earlier run is still completed through the update.
    kickoff = acme.task_id("kickoff")
    receipt = await acme.complete(kickoff, kickoff_result())
    completed_in = (await handle.describe()).run_id
    await acme.advance(days=25)
    status = await acme.status()
    assert status.success_plan is not None
    assert len(acme.emails("welcome")) == 1 and len(acme.emails("checkin_report")) == 2

    # The same completion sent again once the run that took it has continued as new
    # (a client retrying late): Temporal no longer knows the update id, the lifecycle
    # does, and answers with the first receipt; a different completion is refused.
    await acme.advance(days=60)
    latest = acme.h.client.get_workflow_handle(handle.id)
    assert (await latest.describe()).run_id != completed_in
    assert await acme.complete(kickoff, kickoff_result()) == receipt
    with pytest.raises(LifecycleError, match="is not open"):
        await acme.complete(kickoff, {**kickoff_result(), "notes": "a second opinion"})


async def test_the_next_term_carries_open_work_only(acme: Lifecycle) -> None:
    """The state a renewal hands the next term keeps the tasks still open, not the last
    term's finished ones: those are in the records, and carried on they would make the
    state grow every term."""
    await acme.sign_up()
    kickoff, renewal = acme.task_id("kickoff"), acme.task_id("renewal")
    await acme.complete(kickoff, kickoff_result())
    await acme.advance(days=280)
    await acme.complete(renewal, {"kind": "renewal", "outcome": "renewed", "reason": "Goals met"})
    await acme.advance(days=90)
    assert (await acme.status()).term == 2

    history = await acme.handle().fetch_history()  # the run the renewal started
    started = history.events[0].workflow_execution_started_event_attributes
    [carried] = await acme.h.client.data_converter.decode(started.input.payloads, [LifecycleInput])
    assert carried.state is not None and carried.state.term == 2
    assert kickoff not in carried.state.tasks and renewal not in carried.state.tasks
    checkpoint = acme.task_id("renewal_checkpoint-90d")
    assert checkpoint in carried.state.tasks
    assert all(t.status.value == "open" for t in carried.state.tasks.values())

    # Work left open in the first term can still be done in the second.
    await acme.complete(checkpoint, {"kind": "renewal_checkpoint", "manager_rating": "neutral"})
    assert acme.task_row(checkpoint).status == "done"
