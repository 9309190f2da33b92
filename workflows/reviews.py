"""Periodic progress reviews: automated check-ins that reassess the account's place in
the success quadrant, review calls for the manager, and the playbooks a move opens."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.effects import event, record, store_and_send
from workflows.step import Lifecycle

with workflow.unsafe.imports_passed_through():
    from activities import contracts
    from activities.contracts import AssessmentRequest, CheckedIn, CheckIn, Recipient
    from models.lifecycle import LastAssessment, Phase, Step
    from models.roles import Role
    from models.scoring import Assessment, Quadrant, Risk
    from models.tasks import NewTask, TaskKind

_SCORED = {
    Quadrant.happy_profitable,
    Quadrant.unhappy_profitable,
    Quadrant.happy_unprofitable,
    Quadrant.unhappy_unprofitable,
}


def situation(assessment: Assessment, previous: LastAssessment | None) -> str | None:
    """What changed enough to open a playbook: a new risk, or a move into a quadrant."""
    had = set(previous.risks) if previous else set()
    if Risk.neutral_high_profit in assessment.risks and Risk.neutral_high_profit not in had:
        return Risk.neutral_high_profit.value
    moved = previous is None or previous.quadrant != assessment.quadrant
    if assessment.quadrant in _SCORED and moved:
        return assessment.quadrant.value
    return None


async def check_in(lc: Lifecycle, step: Step) -> None:
    await assess_and_report(lc, step.key)


async def assess_and_report(lc: Lifecycle, key: str, email: bool = True) -> Assessment:
    """Gather signals, measure progress against the customer's goals, reassess, tell the
    customer where they stand, and open the playbook a move calls for."""
    state = lc.state
    customer_id = state.customer.customer_id
    previous = state.last_assessment
    request = AssessmentRequest(
        customer_id=customer_id,
        key=lc.key(key),
        as_of=workflow.now(),
        scoring=state.plan.scoring,
        previous=previous.as_previous() if previous else None,
    )
    assessment: Assessment
    if email:  # the assessment and its report in one step
        report = lc.mail.request(lc.key(key), "checkin_report", customer_id, Recipient.customer)
        checked: CheckedIn = await store_and_send(
            contracts.check_in, CheckIn(assessment=request, report=report)
        )
        assessment = checked.assessment
        lc.mail.follow(report, checked.report)
    else:
        assessment = await record(contracts.assess_account, request)
    state.last_assessment = LastAssessment(
        assessed_at=assessment.assessed_at,
        quadrant=assessment.quadrant,
        level=assessment.level,
        customer_score=assessment.customer_score,
        company_score=assessment.company_score,
        risks=assessment.risks,
    )
    lc.index_search_attributes()
    opened = situation(assessment, previous)
    if opened is not None:
        await open_playbook(lc, key, opened, previous)
    return assessment


async def open_playbook(
    lc: Lifecycle, key: str, opened: str, previous: LastAssessment | None
) -> None:
    customer = lc.state.customer
    before = previous.quadrant.value if previous else "no assessment"
    await event(
        customer.customer_id,
        lc.key(f"{key}:moved"),
        "quadrant_changed",
        f"Assessment moved from {before} to {opened}",
    )
    playbook = getattr(lc.state.plan.playbooks, opened)
    if playbook is None:
        return
    await lc.desk.open(
        NewTask(
            f"playbook-{key}",
            TaskKind.playbook,
            f"{playbook.title}: {customer.company}",
            playbook.owner_role,
            due_in=timedelta(days=playbook.due_days),
            playbook=opened,
            requires_decision=playbook.requires_decision,
        )
    )


async def schedule_review_call(lc: Lifecycle, step: Step) -> None:
    await lc.desk.open(
        NewTask(
            step.key,
            TaskKind.review_call,
            f"Progress review call with {lc.state.customer.company}",
            Role.manager,
            due_in=timedelta(days=lc.state.plan.reviews.review_call_due_days),
        )
    )


async def champion_left(lc: Lifecycle, email: str) -> None:
    """A champion left the account: a classic churn signal. The plan's `champion_left`
    playbook opens once per champion and term (the task's key names them), however
    often the news arrives."""
    playbook = lc.state.plan.playbooks.champion_left
    if playbook is None or lc.state.phase is Phase.churned:
        return
    await lc.desk.open(
        NewTask(
            f"champion-left:{email.strip().lower()}",
            TaskKind.playbook,
            f"{playbook.title}: {lc.state.customer.company} ({email})",
            playbook.owner_role,
            due_in=timedelta(days=playbook.due_days),
            playbook="champion_left",
            requires_decision=playbook.requires_decision,
        )
    )
