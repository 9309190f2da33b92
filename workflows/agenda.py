"""A term's agenda: every dated step the lifecycle will take, computed from the plan.

The agenda is a pure function of the state, so a lifecycle that continues-as-new, or a
worker that restarts, finds the same steps at the same times and skips those done.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.lifecycle import LifecycleState, Step, StepKind


def _every(start: datetime, end: datetime, days: int) -> list[datetime]:
    times, at = [], start + timedelta(days=days)
    while at < end:
        times.append(at)
        at += timedelta(days=days)
    return times


def term_agenda(state: LifecycleState) -> list[Step]:
    plan, start, end = state.plan, state.term_start, state.term_end
    steps: list[Step] = []
    imported_at = state.imported_at if state.term == 1 else None
    if imported_at is not None:
        # An existing account: no welcome; its record is opened on the day of the import.
        steps.append(Step(key="imported", kind=StepKind.imported, at=imported_at))
    elif state.term == 1:
        onboarding = plan.onboarding
        # The welcome invites to the tutorials and opens the kickoff.
        steps.append(Step(key="welcome", kind=StepKind.welcome, at=start))
        for n in range(1, onboarding.max_nudges + 1 if onboarding.tutorials else 1):
            at = start + timedelta(days=n * onboarding.nudge_after_days)
            steps.append(Step(key=f"tutorial_nudge-{n}", kind=StepKind.tutorial_nudge, at=at))
    for n, at in enumerate(_every(start, end, plan.reviews.checkin_every_days), 1):
        steps.append(Step(key=f"check_in-{n}", kind=StepKind.check_in, at=at))
    renewal_opens = end - timedelta(days=plan.renewal.lead_days)
    for n, at in enumerate(_every(start, renewal_opens, plan.reviews.review_call_every_days), 1):
        steps.append(Step(key=f"review_call-{n}", kind=StepKind.review_call, at=at))
    for days in sorted(set(plan.renewal.checkpoint_days), reverse=True):
        at = end - timedelta(days=days)
        if at > start:
            key = f"renewal_checkpoint-{days}d"
            steps.append(Step(key=key, kind=StepKind.renewal_checkpoint, at=at))
    if imported_at is not None:
        # Picked up from today: what was due before the import happened elsewhere; a
        # renewal conversation already due opens at once.
        renewal_opens = max(renewal_opens, imported_at)
        steps = [s for s in steps if s.at >= imported_at]
    steps.append(Step(key="renewal", kind=StepKind.renewal, at=renewal_opens))
    # Stable order: by time, then in the order written above (sorted() is stable).
    return sorted(steps, key=lambda s: s.at)


def next_step(state: LifecycleState) -> Step | None:
    done = set(state.steps_done)
    return next((s for s in term_agenda(state) if s.key not in done), None)
