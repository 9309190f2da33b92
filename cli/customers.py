"""`tandem` commands of the success team about their customers: sign-up, the portfolio,
one customer's detail, measured signals, and what the lifecycle is told from outside."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from cli.common import (
    SIGN_UP_QUEUED,
    client,
    engine,
    fail,
    find_or_fail,
    not_found,
    out,
    rep_view,
    resolve_customer,
    run,
    score,
    settings,
    when,
)
from db.engine import session_scope
from db.ingest import FutureSignal, UnknownContact, UnknownGoal, record_signals
from db.queries import CustomerNotFound, customer_overview, list_customers
from models.customer import SignUp
from models.public import AssessmentDetailPublic
from models.signals import ACTIVE_USERS, SignalIn, SignalKind
from models.tasks import describe_validation_error
from plans import PlanError, load_plan

app = typer.Typer(pretty_exceptions_enable=False)


@app.command()
def signup(
    company: Annotated[str, typer.Option(help="the customer's organisation")],
    contact_name: Annotated[str, typer.Option(help="the person who signed up")],
    email: Annotated[str, typer.Option(help="their email address")],
    plan: Annotated[str, typer.Option(help="plan template name or .toml path")] = "default",
    external_id: Annotated[str | None, typer.Option(help="your CRM or billing id")] = None,
    owner: Annotated[str | None, typer.Option(help="success manager's email")] = None,
) -> None:
    """Sign a customer up: starts their lifecycle (a repeat finds the existing one)."""
    from lifecycles import sign_up

    try:
        request = SignUp(
            company=company,
            contact_name=contact_name,
            email=email,
            plan=plan,
            external_id=external_id,
            owner=owner,
        )
    except ValidationError as error:
        fail(describe_validation_error(error))
    config = settings()
    try:
        template = load_plan(plan, config.plans_dir)
    except PlanError as error:
        fail(str(error))

    async def go():  # type: ignore[no-untyped-def]
        return await sign_up(await client(), request, template, config.task_queue)

    receipt = run(go(), without_worker=SIGN_UP_QUEUED)
    if receipt.new:
        out.print(
            f"Signed up [bold]{request.company}[/] as [bold]{receipt.customer_id}[/] "
            f"(lifecycle {receipt.workflow_id}, plan {receipt.plan})."
        )
        out.print(f"Welcome email composed for {request.email}; see {config.outbox_dir}/")
    else:
        out.print(
            f"{request.company} is already signed up as {receipt.customer_id} "
            f"(phase {receipt.phase.value}); nothing was sent again."
        )


@app.command()
def demo(plan: Annotated[str, typer.Option(help="plan template")] = "default") -> None:
    """Seed a handful of customers across the success quadrant (needs `make run`)."""
    from demo import seed_demo

    config = settings()
    try:
        template = load_plan(plan, config.plans_dir)
    except PlanError as error:
        fail(str(error))

    async def go():  # type: ignore[no-untyped-def]
        return await seed_demo(await client(), engine(), template, config.task_queue)

    out.print("Seeding demo customers through their lifecycles:")
    placed = run(go(), without_worker=SIGN_UP_QUEUED.replace("the sign-up is", "the sign-ups are"))
    out.print(f"Done: {len(placed)} customers. Open the dashboard, or `tandem customers`.")


@app.command()
def reassess(customer: Annotated[str, typer.Argument(help="customer id or company")]) -> None:
    """Score a customer now, between check-ins (e.g. after importing signals)."""
    from lifecycles import reassess as reassess_now

    customer_id = resolve_customer(customer)

    async def go():  # type: ignore[no-untyped-def]
        return await reassess_now(await client(), customer_id)

    a = run(go())
    out.print(
        f"{customer_id}: {a.quadrant.value} (customer {score(a.customer_score)}, "
        f"company {score(a.company_score)}, level {score(a.level)})"
    )
    if a.missing:
        out.print(f"missing inputs: {', '.join(a.missing)}")


@app.command()
def customers(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List customers with their phase and quadrant."""
    with session_scope(engine()) as session:
        rows = list_customers(session, rep_view=rep_view())
    if as_json:
        typer.echo(json.dumps([c.model_dump(mode="json") for c in rows], indent=2))
        return
    table = Table("id", "company", "phase", "term", "quadrant", "level", "renewal", "at risk")
    for c in rows:
        level = score(c.level)
        table.add_row(
            c.id,
            c.company,
            c.phase,
            str(c.term),
            c.quadrant,
            level,
            c.term_end.date().isoformat(),
            "yes" if c.at_risk else "",
        )
    out.print(table if rows else "No customers yet: `tandem signup --help`.")


@app.command()
def show(customer: Annotated[str, typer.Argument(help="customer id or company name")]) -> None:
    """The customer's phase, success plan, open tasks, latest assessment and timeline."""
    with session_scope(engine()) as session:
        try:
            view = customer_overview(session, customer, rep_view=rep_view())
        except CustomerNotFound as error:
            not_found(error)
    c = view.customer
    out.print(f"[bold]{c.company}[/] ({c.id}), {c.contact_name} <{c.email}>")
    out.print(
        f"Phase {c.phase} · term {c.term} ends {c.term_end.date()} · "
        f"plan {c.plan} · onboarded: {c.onboarded}"
    )
    if c.churn_reason:
        out.print(f"Ended: {c.churn_reason}")
    if c.unsubscribed_at:
        out.print(
            f"Unsubscribed from automated email {when(c.unsubscribed_at)} "
            f"({c.unsubscribed_by}): customer mail is kept back, staff mail still goes"
        )
    plan, words = view.success_plan, view.customer_words
    out.print("\n[bold]Success plan[/]" + (f" (v{plan.version})" if plan else ""))
    if words:
        out.print(f"  In their own words: “{words.success_definition}”")
    if plan:
        out.print(f"  As recorded by their manager: “{plan.success_definition}”")
        out.print(f"  Intended use: {plan.intended_use}")
        for goal in view.goals:
            now = "not measured yet" if goal.current is None else f"{goal.current:g}"
            if goal.progress is not None:
                now += f" ({goal.progress:.0%} of the way)"
            out.print(
                f"  • {goal.metric}: {goal.baseline:g} → {goal.target:g} "
                f"{goal.unit} by {goal.target_date}; now {now}"
            )
        for line in plan.objectives:
            out.print(f"  objective: {line}")
        for line in plan.constraints:
            out.print(f"  constraint: {line}")
    else:
        out.print(
            "  not captured yet (the kickoff task records it, or the customer on the plan"
            " page their check-in and renewal emails link to)"
        )
    a = view.assessment
    out.print("\n[bold]Latest assessment[/]")
    if a:
        out.print(
            f"  {a.quadrant} · customer {score(a.customer_score)} · company "
            f"{score(a.company_score)} · level {score(a.level)} · {when(a.assessed_at)}"
        )
        if a.churn_risk is not None:
            within = f" within {a.detail.horizon_days} days" if a.detail.horizon_days else ""
            flag = " · AT RISK" if a.detail.at_risk else ""
            out.print(f"  churn risk {a.churn_risk:.0%}{within}{flag}")
        if a.detail.risks:
            out.print(f"  risks: {', '.join(a.detail.risks)}")
        if a.detail.missing:
            out.print(f"  missing inputs: {', '.join(a.detail.missing)}")
        _explain(a.detail)
    else:
        out.print("  none yet (the first check-in makes one)")
    out.print("\n[bold]Open tasks[/]")
    for t in view.open_tasks:
        out.print(
            f"  {t.id}  {t.title} · {t.owner_role} · due {when(t.due_at)}"
            + (" · ESCALATED" if t.escalated else "")
        )
    if not view.open_tasks:
        out.print("  none")
    out.print("\n[bold]Timeline[/] (newest first)")
    for e in view.timeline:
        out.print(f"  {when(e.at)}  {e.message}")


def _explain(detail: AssessmentDetailPublic) -> None:
    """Each component: the raw figure it was scored from, its score and its weight."""
    if not detail.explanation:
        return
    table = Table("component", "figure", "score", "weight", box=None, padding=(0, 2, 0, 2))
    for part in detail.explanation:
        name = part.component
        if part.estimated:
            name += f" (estimated {' and '.join(detail.estimated)})"
        weight = "-" if part.weight is None else f"{part.weight:.0%}"
        figure = "-" if part.figure is None else f"{part.figure:g}"
        table.add_row(name, figure, f"{part.score:+.2f}", weight)
    out.print(table)


# A negative figure ("-5") is read as the value, not as an option nobody has: the signal's
# own validation then says whether that kind can be negative.
@app.command(context_settings={"ignore_unknown_options": True})
def signal(
    customer: Annotated[str, typer.Argument(help="customer id or company name")],
    kind: Annotated[SignalKind, typer.Argument(help="what was measured")],
    value: Annotated[float, typer.Argument()],
    goal: Annotated[str | None, typer.Option(help="goal key, for kind 'goal'")] = None,
    at: Annotated[datetime | None, typer.Option(help="when measured (UTC), default now")] = None,
    client_id: Annotated[str | None, typer.Option("--id", help="idempotency id")] = None,
    metric: Annotated[
        str | None, typer.Option(help="usage only: event type, feature or active_users")
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(help="start of the period a count covers (UTC)")
    ] = None,
    contact: Annotated[
        str | None, typer.Option(help="nps/csat only: the contact who answered (their email)")
    ] = None,
) -> None:
    """Record a measured input (nps, csat, usage, seats, mrr, tickets, fcr, aht, revenue,
    cost, success_hours, goal). A usage count over a period: --metric and --since. A
    survey answer by a contact: --contact (the account's NPS nets its contacts')."""
    now = datetime.now(UTC)
    observed = (at.replace(tzinfo=UTC) if at and at.tzinfo is None else at) or now
    period_start = since.replace(tzinfo=UTC) if since and since.tzinfo is None else since
    customer_id = resolve_customer(customer)
    try:
        item = SignalIn(
            customer_id=customer_id,
            kind=kind,
            value=value,
            goal_key=goal,
            observed_at=observed,
            client_id=client_id,
            metric=metric,
            period_start=period_start,
            contact=contact,
        )
    except ValidationError as error:
        fail(describe_validation_error(error))
    try:
        added = record_signals(engine(), [item], received_at=now)
    except (UnknownGoal, UnknownContact, FutureSignal) as error:
        fail(str(error))
    out.print(
        f"Recorded {kind.value} = {value:g} for {customer_id}."
        if added
        else "Already recorded (same --id); nothing changed."
    )
    if added and kind is SignalKind.usage and since is None and item.metric_name != ACTIVE_USERS:
        # Without a period a usage figure is a level for its day: a month's count sent
        # so would read as that many a day (docs/scoring.md, "Daily rates").
        out.print(f"Read as {value:g} for that day; a count over a period needs --since.")


@app.command()
def unsubscribe(
    customer: Annotated[str, typer.Argument(help="customer id or company name")],
    undo: Annotated[bool, typer.Option("--undo", help="send them automated email again")] = False,
    by: Annotated[str, typer.Option(help="who records it")] = os.environ.get("USER", "cli"),
) -> None:
    """Stop automated email to a customer who asked (e.g. replied "unsubscribe").
    Their tasks for the team still open and staff still get notified."""
    from db.unsubscribe import set_unsubscribed

    customer_id = resolve_customer(customer)
    changed = set_unsubscribed(engine(), customer_id, not undo, "cli", actor=by)
    state = "subscribed again" if undo else "unsubscribed"
    out.print(f"{customer_id}: {state}." if changed else f"{customer_id} was {state} already.")


@app.command("tutorial-done")
def tutorial_done(customer: str, tutorial: str) -> None:
    """Tell the lifecycle the customer completed a tutorial."""
    from lifecycles import tutorial_completed

    with session_scope(engine()) as session:
        row = find_or_fail(session, customer)
        customer_id, plan_name, plan_version = row.id, row.plan_name, row.plan_version
    _check_tutorial(plan_name, plan_version, tutorial)

    async def go() -> None:
        await tutorial_completed(await client(), customer_id, tutorial)

    run(go())
    out.print(f"Sent: {customer_id} completed tutorial {tutorial!r}.")


def _check_tutorial(plan_name: str, plan_version: int, key: str) -> None:
    """A signal has no answer, and the lifecycle only logs a tutorial its plan lacks:
    check the key here, against the plan's file while it is still the version the
    customer is on (the lifecycle keeps the template it started with)."""
    try:
        plan = load_plan(plan_name, settings().plans_dir)
    except PlanError:
        return
    keys = [t.key for t in plan.onboarding.tutorials]
    if plan.version == plan_version and key not in keys:
        known = ", ".join(keys) or "none"
        fail(f"tutorial: no {key!r} in plan {plan.label} (its tutorials: {known})")


@app.command()
def cancel(customer: str, reason: Annotated[str, typer.Option(help="why they leave")]) -> None:
    """The customer cancels mid-term: open work closes, a farewell is sent, the lifecycle ends."""
    from lifecycles import cancel as cancel_lifecycle

    customer_id = resolve_customer(customer)

    async def go() -> None:
        await cancel_lifecycle(await client(), customer_id, reason)

    run(go())
    out.print(f"Cancellation sent to {customer_id}'s lifecycle.")
