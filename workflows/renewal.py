"""The renewal conversation: ask how the customer is doing against *their* definition
of success (DOMAIN.md §2.4), then start the next term or say goodbye."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.effects import event
from workflows.step import Lifecycle

with workflow.unsafe.imports_passed_through():
    from activities.contracts import Recipient
    from models.lifecycle import LifecycleEnd, LifecycleState, Phase, Step, TermRecord
    from models.roles import Role
    from models.scoring import Quadrant
    from models.tasks import (
        NewTask,
        RenewalCheckpointResult,
        Task,
        TaskKey,
        TaskKind,
        TaskStatus,
    )

_AXES = {
    Quadrant.happy_profitable: (1, 1),
    Quadrant.unhappy_profitable: (-1, 1),
    Quadrant.happy_unprofitable: (1, -1),
    Quadrant.unhappy_unprofitable: (-1, -1),
    Quadrant.neutral: (0, 0),
}


def quadrants_apart(a: Quadrant, b: Quadrant) -> int:
    """Axis steps between two positions: adjacent quadrants are 2 apart, opposite 4,
    neutral 1 from each; 'more than a quadrant' is more than 2."""
    (ax, ay), (bx, by) = _AXES[a], _AXES[b]
    return abs(ax - bx) + abs(ay - by)


async def ask_for_rating(lc: Lifecycle, step: Step) -> None:
    days_out = (lc.state.term_end - step.at).days
    await lc.desk.open(
        NewTask(
            step.key,
            TaskKind.renewal_checkpoint,
            f"Renewal in {days_out} days: your own rating of {lc.state.customer.company}",
            Role.manager,
            due_in=timedelta(days=lc.state.plan.reviews.review_call_due_days),
        )
    )


async def compare_rating(lc: Lifecycle, task: Task, result: RenewalCheckpointResult) -> None:
    last = lc.state.last_assessment
    if last is None or last.quadrant is Quadrant.unknown:
        return
    apart = quadrants_apart(result.manager_rating, last.quadrant)
    if apart <= 2:
        return
    reason = (
        f"The manager rates the account {result.manager_rating.value}; "
        f"the latest assessment says {last.quadrant.value}."
    )
    await event(task.customer_id, f"{task.task_id}:disagreement", "rating_disagreement", reason)
    await lc.mail.send(
        f"{task.task_id}:disagreement",
        "task_escalation",
        task.customer_id,
        Recipient.manager,
        task_id=task.task_id,
        reason=reason,
    )


async def open_conversation(lc: Lifecycle, step: Step) -> None:
    """Instead of 'please renew': how are you doing against your goals, how can we help?"""
    state = lc.state
    await lc.enter(Phase.renewal)
    await lc.mail.send(
        lc.key(step.key),
        "renewal_invite",
        state.customer.customer_id,
        Recipient.customer,
        term_end=state.term_end.date().isoformat(),
    )
    due = state.term_end - timedelta(days=state.plan.renewal.due_days_before_term_end)
    await lc.desk.open(
        NewTask(
            step.key,
            TaskKind.renewal,
            f"Renewal conversation with {state.customer.company}",
            Role.manager,
            due_in=max(due - workflow.now(), timedelta(days=1)),
        )
    )


async def end(lc: Lifecycle, reason: str) -> LifecycleEnd:
    """Churn or cancellation: close the open work, say goodbye, and stop."""
    state = lc.state
    await lc.desk.close_all(reason)
    state.phase = Phase.churned
    lc.index_search_attributes()
    await lc.save_snapshot(churn_reason=reason)
    await lc.mail.send(
        lc.key("farewell"),
        "farewell",
        state.customer.customer_id,
        Recipient.customer,
        reason=reason,
    )
    await event(
        state.customer.customer_id, lc.key("ended"), "churned", f"Lifecycle ended: {reason}"
    )
    await workflow.wait_condition(workflow.all_handlers_finished)
    await lc.mail.drain()
    return LifecycleEnd(customer_id=state.customer.customer_id, terms=state.term, reason=reason)


def next_term(state: LifecycleState) -> LifecycleState:
    decision = state.renewal
    assert decision is not None
    record = TermRecord(
        term=state.term,
        started=state.term_start,
        ended=state.term_end,
        outcome=decision.outcome,
        reason=decision.reason,
    )
    start = state.term_end
    return state.model_copy(
        update={
            "term": state.term + 1,
            "term_start": start,
            "term_end": start + timedelta(days=state.plan.renewal.term_days),
            "phase": Phase.adopting if state.onboarded else Phase.onboarding,
            "steps_done": [],
            "renewal": None,
            "history": [*state.history, record],
            # Only work still open goes on; a finished task is in the records, and
            # carried on it would grow the state handed over every term.
            "tasks": {
                task_id: task
                for task_id, task in state.tasks.items()
                if task.status is TaskStatus.open
            },
            # A late retry of a completion can only be for the term just ended.
            "receipts": {
                update_id: receipt
                for update_id, receipt in state.receipts.items()
                if TaskKey.parse(receipt.task_id).term == state.term
            },
        }
    )
