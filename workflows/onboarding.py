"""Sign-up and onboarding: contact at once, personal tutorials, and the kickoff in which
the success manager records the customer's own definition of success."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.effects import COMPOSE_TIMEOUT, event, in_this_task, record, timeline_entry
from workflows.step import Lifecycle

with workflow.unsafe.imports_passed_through():
    from activities import contracts
    from activities.contracts import AccountImport, AccountOpening, Recipient
    from models.lifecycle import Phase, Step
    from models.roles import Role
    from models.tasks import KickoffResult, NewTask, TaskKind


def _tutorials(lc: Lifecycle, keys: list[str] | None = None) -> list[dict[str, str]]:
    return [
        {"key": t.key, "title": t.title, "url": t.url}
        for t in lc.state.plan.onboarding.tutorials
        if keys is None or t.key in keys
    ]


def pending_tutorials(lc: Lifecycle) -> list[str]:
    return [k for k in lc.state.plan.required_tutorials() if k not in lc.state.tutorials_done]


async def welcome(lc: Lifecycle, step: Step) -> None:
    """Reach out at once and offer help getting started, with personal tutorials (DOMAIN.md
    §2), in one step: the customer's record, one welcome that also invites them to the
    kickoff, and the kickoff task for their success manager."""
    customer = lc.state.customer
    signed_up = timeline_entry(
        customer.customer_id,
        "signed_up",
        "signed_up",
        f"Signed up on plan {lc.state.plan.label}; welcome email on its way to {customer.email}",
    )
    kickoff = lc.desk.draft(_kickoff_task(lc))
    welcome = lc.mail.request(
        lc.key(step.key),
        "welcome",
        customer.customer_id,
        Recipient.customer,
        tutorials=_tutorials(lc),
        kickoff_by=kickoff.update.task.due_at.isoformat(),
    )
    opening = AccountOpening(
        snapshot=lc.snapshot(), entry=signed_up, welcome=welcome, kickoff=kickoff
    )
    # Two emails: each may take a delivery attempt's time.
    opened = await in_this_task(contracts.open_account, opening, COMPOSE_TIMEOUT * 2)
    lc.mail.follow(welcome, opened.welcome)
    lc.mail.follow(kickoff.notice, opened.kickoff_notice)
    lc.desk.follow_up(kickoff.update.task)


async def imported(lc: Lifecycle, step: Step) -> None:
    """An existing account, mid-term: its record, contacts and MRR, and no welcome.
    Onboarding is done unless the import said otherwise; then the kickoff is still to
    hold, and its task opens today."""
    customer, account = lc.state.customer, lc.state.imported
    assert account is not None
    onboarding = "onboarding done" if lc.state.onboarded else "onboarding still to finish"
    entry = timeline_entry(
        customer.customer_id,
        "imported",
        "imported",
        f"Imported from {account.source} mid-term ({lc.state.term_start:%Y-%m-%d} to "
        f"{lc.state.term_end:%Y-%m-%d}) on plan {lc.state.plan.label}; {onboarding}; "
        "no welcome sent",
    )
    opening = AccountImport(snapshot=lc.snapshot(), entry=entry, account=account)
    await record(contracts.import_account, opening)
    if not lc.state.onboarded:
        await lc.desk.open(_kickoff_task(lc))


def _kickoff_task(lc: Lifecycle) -> NewTask:
    title = f"Kickoff with {lc.state.customer.company}: capture how they define success"
    due_in = timedelta(days=lc.state.plan.onboarding.kickoff_due_days)
    return NewTask("kickoff", TaskKind.kickoff, title, Role.manager, due_in)


async def nudge_tutorials(lc: Lifecycle, step: Step) -> None:
    pending = pending_tutorials(lc)
    if lc.state.onboarded or not pending:
        return
    await lc.mail.send(
        lc.key(step.key),
        "tutorial_nudge",
        lc.state.customer.customer_id,
        Recipient.customer,
        tutorials=_tutorials(lc, pending),
    )


async def tutorial_completed(lc: Lifecycle, tutorial_key: str) -> None:
    known = {t.key: t.title for t in lc.state.plan.onboarding.tutorials}
    if tutorial_key not in known:
        workflow.logger.warning("ignoring unknown tutorial %r", tutorial_key)
        return
    if tutorial_key in lc.state.tutorials_done:
        return
    lc.state.tutorials_done.append(tutorial_key)
    await event(
        lc.state.customer.customer_id,
        f"tutorial:{tutorial_key}",
        "tutorial_completed",
        f"Tutorial completed: {known[tutorial_key]}",
    )
    if lc.state.plan.required_tutorials() and not pending_tutorials(lc):
        await finish_onboarding(lc, "all required tutorials completed")


async def kickoff_held(lc: Lifecycle, result: KickoffResult) -> None:
    if result.onboarding_complete:
        await finish_onboarding(lc, "the kickoff marked onboarding complete")
    elif not lc.state.plan.required_tutorials():
        await finish_onboarding(lc, "kickoff held; the plan has no required tutorials")


async def finish_onboarding(lc: Lifecycle, why: str) -> None:
    if lc.state.onboarded:
        return
    lc.state.onboarded = True
    await event(lc.state.customer.customer_id, "onboarded", "onboarded", f"Onboarding done: {why}")
    if lc.state.phase is Phase.onboarding:
        await lc.enter(Phase.adopting)
    else:
        await lc.save_snapshot()
