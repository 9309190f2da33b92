"""The dashboard over HTTP, against real lifecycles on the time-skipping server.

The HTTP client is httpx on the test's own event loop (ASGITransport), not the
threaded TestClient: the worker runs on this loop, and a page that completes a task
waits for the worker to answer the update."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import Session, select

from api.main import create_app
from api.routes import portfolio
from api.web import dashboard, task_forms
from db.assignment import reassign_account
from models.customer import SignUp
from models.plan import PlanTemplate
from models.tables import SuccessPlanRecord
from models.tasks import RESULT_MODELS, TaskKind
from tests.api_support import staff_tokens
from tests.conftest import Harness, Lifecycle

SCRIPT = "<script>alert(1)</script>"
PROFILES = {
    "happy_profitable": dict(nps=[9, 10], csat=5, revenue=10000, cost=3000),
    "unhappy_profitable": dict(nps=[2, 3], csat=1, revenue=8000, cost=2000),
    "happy_unprofitable": dict(nps=[9, 10], csat=5, revenue=1000, cost=3000),
    "unhappy_unprofitable": dict(nps=[2, 3], csat=1, revenue=500, cost=3000),
}


def build_app(harness: Harness, **overrides: object) -> FastAPI:
    """The app as the lead wires it, on the harness's queue, records and settings."""
    settings = harness.settings.model_copy(
        update={"task_queue": harness.task_queue, "public_url": "http://test", **overrides}
    )
    client = None if "temporal_address" in overrides else harness.client
    app = create_app(settings=settings, engine=harness.engine, client=client)
    app.include_router(portfolio.router)
    app.include_router(dashboard.router)
    return app


def tokens(harness: Harness) -> dict[str, str]:
    return staff_tokens(harness.engine)


async def seed_portfolio(harness: Harness, plan: PlanTemplate) -> dict[str, Lifecycle]:
    """One customer per quadrant, scored by their first check-in (day 30). The happy and
    profitable one has a name that must be escaped wherever it is shown."""
    customers = {}
    for quadrant, signals in PROFILES.items():
        company = SCRIPT if quadrant == "happy_profitable" else quadrant.replace("_", " ").title()
        signup = SignUp(
            company=company, contact_name="Pat", email=f"{quadrant}-{uuid.uuid4().hex[:6]}@c.test"
        )
        customer = Lifecycle(harness, signup, plan)
        await customer.sign_up()
        await customer.signals(**signals)
        customers[quadrant] = customer
    await customer.advance(days=31)
    return customers


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no csrf field on the page"
    return found.group(1)


async def login(http: httpx.AsyncClient, token: str) -> str:
    """Log in; returns the session's CSRF token."""
    page = await http.get("/login")
    done = await http.post("/login", data={"csrf": csrf_of(page.text), "token": token})
    assert done.status_code == 303, done.text
    return csrf_of((await http.get("/app/tasks")).text)


@dataclass
class Dash:
    http: httpx.AsyncClient
    tokens: dict[str, str]


@pytest.fixture
async def dash(harness: Harness) -> AsyncIterator[Dash]:
    transport = httpx.ASGITransport(app=build_app(harness))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Dash(http, tokens(harness))


async def test_sessions_csrf_and_the_rep_rule(acme: Lifecycle, dash: Dash) -> None:
    await acme.sign_up()
    await acme.advance(hours=1)
    kickoff = acme.task_id("kickoff")
    http = dash.http

    # No session: every page sends the browser to the login form.
    for path in ("/", "/app/tasks", f"/app/tasks/{kickoff}", "/app/team"):
        page = await http.get(path)
        assert page.status_code == 303 and page.headers["location"] == f"/login?next={path}"
    form = await http.get("/login")
    assert (await http.post("/login", data={"token": dash.tokens["manager"]})).status_code == 403
    wrong = await http.post("/login", data={"csrf": csrf_of(form.text), "token": "tdm_nope"})
    assert wrong.status_code == 401 and "not valid" in wrong.text

    # A rep: their own tasks only (the kickoff is the manager's), no manager pages.
    csrf = await login(http, dash.tokens["rep"])
    assert (await http.get("/")).headers["location"] == "/app/tasks"
    assert kickoff not in (await http.get("/app/tasks")).text
    assert (await http.get(f"/app/tasks/{kickoff}")).status_code == 403
    refused = await http.post(f"/app/tasks/{kickoff}", data={"csrf": csrf})
    assert refused.status_code == 403
    assert (await http.get("/app/team")).status_code == 403
    assert (await http.get("/app/renewals")).status_code == 403
    assert (await http.get("/portfolio")).status_code == 403  # the JSON, on the session

    # Logging out needs the session's CSRF token too.
    assert (await http.post("/logout", data={"csrf": "forged"})).status_code == 403
    assert (await http.get("/app/tasks")).status_code == 200
    assert (await http.post("/logout", data={"csrf": csrf})).headers["location"] == "/login"
    assert (await http.get("/app/tasks")).status_code == 303

    # A manager's form without the right CSRF token changes nothing.
    await login(http, dash.tokens["manager"])
    forged = await http.post(f"/app/tasks/{kickoff}", data={"csrf": "forged", "notes": "x"})
    assert forged.status_code == 403 and acme.task_row(kickoff).status == "open"


def kickoff_form(csrf: str, **goal: str) -> dict[str, str]:
    fields = {
        "key": "active_reps",
        "metric": "reps logging calls weekly",
        "unit": "reps",
        "baseline": "2",
        "target": "12",
        "direction": "increase",
        "target_date": "2030-06-30",
    } | goal
    return {
        "csrf": csrf,
        "success_definition": "Every rep logs their calls in Tandem instead of spreadsheets",
        "intended_use": "Track every deal from first call to signature",
        "objectives": "Retire the shared spreadsheet\n\n",
        "constraints": "One sales team at a time",
        "goal_count": "2",
        # The first fieldset is left blank: the goal the lifecycle calls goals.0 is the
        # second one on the form, and its errors must show there.
        **{f"goals-1-{k}": v for k, v in fields.items()},
    }


async def test_kickoff_through_the_form(acme: Lifecycle, dash: Dash) -> None:
    await acme.sign_up()
    await acme.advance(hours=1)
    kickoff = acme.task_id("kickoff")
    csrf = await login(dash.http, dash.tokens["manager"])
    assert f'href="/app/tasks/{kickoff}"' in (await dash.http.get("/app/tasks")).text
    page = await dash.http.get(f"/app/tasks/{kickoff}")
    assert page.status_code == 200 and 'name="goals-0-target"' in page.text

    more = await dash.http.post(
        f"/app/tasks/{kickoff}", data={"csrf": csrf, "goal_count": "1", "action": "add_goal"}
    )
    assert 'name="goals-1-key"' in more.text and acme.task_row(kickoff).status == "open"

    bad = await dash.http.post(f"/app/tasks/{kickoff}", data=kickoff_form(csrf, target="lots"))
    assert bad.status_code == 422
    # The lifecycle's message, beside the field it names; the input says it is invalid.
    error = re.search(r'<p class="field-error" id="goals-1-target-error">([^<]*)</p>', bad.text)
    assert error and "valid number" in error.group(1)
    assert re.search(r'name="goals-1-target"[^>]*aria-invalid="true"', bad.text)
    assert "Every rep logs their calls" in bad.text  # what was typed is kept
    assert acme.task_row(kickoff).status == "open"
    with Session(acme.h.engine) as session:
        assert session.exec(select(SuccessPlanRecord)).first() is None  # nothing written

    backwards = await dash.http.post(f"/app/tasks/{kickoff}", data=kickoff_form(csrf, target="1"))
    assert backwards.status_code == 422
    assert re.search(r'id="goals-1-error">[^<]*target must be above baseline', backwards.text)

    done = await dash.http.post(f"/app/tasks/{kickoff}", data=kickoff_form(csrf))
    assert done.status_code == 303 and done.headers["location"] == "/app/tasks"
    inbox = await dash.http.get("/app/tasks")
    assert "Done: " in inbox.text and f'href="/app/tasks/{kickoff}"' not in inbox.text
    row = acme.task_row(kickoff)
    assert row.status == "done" and row.completed_by == "sam@team.test"
    assert row.result["success_plan"]["goals"][0]["target"] == 12
    assert row.result["success_plan"]["objectives"] == ["Retire the shared spreadsheet"]
    customer = await dash.http.get(f"/app/customers/{acme.customer_id}")
    assert "Every rep logs their calls" in customer.text and "reps logging calls" in customer.text


async def test_portfolio_counts_and_escaping(
    harness: Harness, default_plan: PlanTemplate, dash: Dash
) -> None:
    customers = await seed_portfolio(harness, default_plan)
    await login(dash.http, dash.tokens["manager"])
    page = (await dash.http.get("/")).text
    assert len(re.findall(r'<circle class="dot ', page)) == 4
    for quadrant, customer in customers.items():
        assert f'data-customer="{customer.customer_id}"' in page
        count = re.search(rf'data-quadrant="{quadrant}">.*?class="n count">(\d+)<', page, re.S)
        assert count and count.group(1) == "1"
    assert SCRIPT not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # Nobody renews within 90 days of the start of a year's term: nothing to forecast.
    assert "<strong>0</strong> of 0 MRR up for renewal in 90 days expected to stay" in page

    only = (await dash.http.get("/?quadrant=happy_unprofitable")).text
    assert len(re.findall(r'<circle class="dot ', only)) == 1

    happy = customers["happy_profitable"].customer_id
    paths = ("/app/customers", f"/app/customers/{happy}", "/app/tasks", "/app/renewals")
    for path in (*paths, "/app/team"):
        shown = await dash.http.get(path)
        assert shown.status_code == 200 and SCRIPT not in shown.text, path
    # Each component explained: its figure, score and weight; and the churn risk.
    explained = (await dash.http.get(f"/app/customers/{happy}")).text
    assert "churn risk" in explained and '<th scope="col">weight</th>' in explained

    data = (await dash.http.get("/portfolio")).json()
    counts = {q["quadrant"]: q["customers"] for q in data["quadrants"]}
    assert all(counts[q] == 1 for q in PROFILES) and len(data["points"]) == 4
    assert (await dash.http.get("/metrics/team?period_days=90")).status_code == 200

    # The success playbook is the reps' work: with no rep on the account it waits in the
    # managers' queue; once the account has a rep, it is theirs to see and open.
    happy_account = customers["happy_profitable"]
    task = happy_account.task_id("playbook-check_in-1")
    assert f'href="/app/tasks/{task}"' in (await dash.http.get("/app/tasks")).text
    rep = httpx.AsyncClient(transport=dash.http._transport, base_url="http://test")
    async with rep:
        await login(rep, dash.tokens["rep"])
        assert task not in (await rep.get("/app/tasks")).text
        assert (await rep.get(f"/app/tasks/{task}")).status_code == 403
        reassign_account(harness.engine, happy, "sam@team.test", rep="riley@team.test")
        inbox = (await rep.get("/app/tasks")).text
        assert f'href="/app/tasks/{task}"' in inbox
        assert "kickoff" not in inbox
        assert (await rep.get(f"/app/tasks/{task}")).status_code == 200


@pytest.mark.parametrize(
    ("kind", "form"),
    [
        (
            "review_call",
            {
                "notes": "Two teams live",
                "goal_progress-active_reps": "7",
                "goal_progress-hours": "",
                "next_steps": "Train EMEA\n\nCall again",
            },
        ),
        ("renewal_checkpoint", {"manager_rating": "happy_profitable", "notes": ""}),
        ("renewal", {"outcome": "renewed", "reason": "Goals met"}),
        ("playbook", {"notes": "Call held", "decision": ""}),
        ("email_review", {"decision": "edit", "subject": "", "text": "Dear Ada, ..."}),
    ],
)
def test_each_form_makes_its_kinds_result(kind: str, form: dict[str, str]) -> None:
    result, _ = task_forms.form_result(kind, form, 1)
    parsed = RESULT_MODELS[TaskKind(kind)].model_validate(result)
    assert parsed.kind == kind
    # A blank optional field is no key at all, not an empty (and invalid) value.
    if kind == "email_review":
        assert "subject" not in result and result["decision"] == "edit"
    if kind == "playbook":
        assert "decision" not in result
    if kind == "review_call":
        assert result["goal_progress"] == {"active_reps": "7"}  # blank: not measured
        assert result["next_steps"] == ["Train EMEA", "Call again"]


def test_refusals_point_at_their_fields() -> None:
    message = (
        "result.success_plan.goals.1.target: Input should be a valid number; "
        "result.success_plan.intended_use: String should have at least 1 character"
    )
    # The result's second goal came from the form's third fieldset (the second was blank).
    errors = task_forms.field_errors(message, "kickoff", [0, 2])
    assert errors == {
        "goals-2-target": "Input should be a valid number",
        "intended_use": "String should have at least 1 character",
    }
    assert task_forms.field_errors(
        "result: Value error, an edit needs the new text", "email_review", []
    ) == {"text": "Value error, an edit needs the new text"}
    assert task_forms.field_errors("task x is not open (it is done)", "playbook", []) == {
        "form": "task x is not open (it is done)"
    }


async def test_the_customer_list_filters_and_pages(
    harness: Harness, default_plan: PlanTemplate, dash: Dash, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every account is listed, scored or not, so a new sign-up is one click away."""
    customers = await seed_portfolio(harness, default_plan)
    newcomer = Lifecycle(
        harness, SignUp(company="Newcomer", contact_name="N", email="n@x.test"), default_plan
    )
    await newcomer.sign_up()
    await login(dash.http, dash.tokens["manager"])

    listed = (await dash.http.get("/app/customers")).text
    assert 'aria-current="page">Customers<' in listed
    for customer in [*customers.values(), newcomer]:
        assert f'href="/app/customers/{customer.customer_id}"' in listed
    assert SCRIPT not in listed

    unhappy = (await dash.http.get("/app/customers?quadrant=unhappy_profitable")).text
    assert re.findall(r'href="/app/customers/([^"]+)"', unhappy) == [
        customers["unhappy_profitable"].customer_id
    ]
    assert (
        "No customers match these filters."
        in (await dash.http.get("/app/customers?owner=nobody@x.test")).text
    )

    # Pages of three, by id; the next page keeps the filter.
    monkeypatch.setattr(dashboard, "CUSTOMERS_PER_PAGE", 3)
    pages, links, path = [], [], "/app/customers?phase=onboarding"
    while path:
        page = (await dash.http.get(path)).text
        pages.append(re.findall(r'href="/app/customers/([^"]+)"', page))
        found = re.search(r'<a href="([^"]+)" rel="next">', page)
        path = found.group(1).replace("&amp;", "&") if found else ""
        links += [path] if path else []
    assert [len(p) for p in pages] == [3, 2] and "phase=onboarding" in links[0]
    everyone = sorted(c.customer_id for c in [*customers.values(), newcomer])
    assert [c for page in pages for c in page] == everyone
