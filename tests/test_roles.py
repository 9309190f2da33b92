"""Who owns what: the staff, the accounts' managers and reps, the tasks' assignees, and
what each role sees and may do, in the API and the dashboard (records on SQLite and
PostgreSQL, the real app over ASGI)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from activities.contracts import LifecycleSnapshot, TaskUpdate, TimelineEntry
from activities.records import save_lifecycle, save_task
from api.main import create_app
from db import migrate
from db.assignment import reassign_account, reassign_task
from db.engine import session_scope
from db.staff import StaffError, add_staff, set_active
from db.team_metrics import team_report
from db.tokens import create_token
from models.customer import CustomerProfile
from models.lifecycle import Phase
from models.roles import Role
from models.staff import Staff
from models.tables import ApiToken, AuditEntry, Customer, SignalRecord, TaskRecord, TimelineEvent
from models.tasks import Task, TaskKind
from settings import Settings
from tests.api_support import api_for
from tests.conftest import Lifecycle
from tests.test_dashboard import PROFILES, login

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PROFILE = PROFILES["happy_profitable"]  # its first check-in opens a playbook for the rep
PEOPLE = {
    "admin": ("Ada", "ada@team.test", "admin"),
    "manager": ("Sam", "sam@team.test", "manager"),
    "other_manager": ("Max", "max@team.test", "manager"),
    "rep": ("Riley", "riley@team.test", "rep"),
    "other_rep": ("Robin", "robin@team.test", "rep"),
}
# (customer, manager, rep): Riley is rep on Acme only, Robin on Globex only.
BOOK = [
    ("acme", "sam@team.test", "riley@team.test"),
    ("globex", "max@team.test", "robin@team.test"),
]


def customer(id: str, owner: str | None, rep: str | None = None, phase: str = "adopting"):
    return Customer(
        id=id, company=id.title(), contact_name="Dana", email=f"dana@{id}.test", owner=owner,
        rep=rep, plan_name="default", plan_version=1, phase=phase, term_start=NOW,
        term_end=NOW + timedelta(days=365),
    )  # fmt: skip


def task(id: str, customer_id: str, role: str, assignee: str | None, status: str = "open"):
    return TaskRecord(
        id=id, customer_id=customer_id, kind="playbook" if role == "rep" else "kickoff",
        title=f"{role} work for {customer_id}", owner_role=role, assignee=assignee,
        status=status, due_at=NOW + timedelta(days=3), created_at=NOW,
    )  # fmt: skip


@pytest.fixture
def team(engine: Engine) -> dict[str, str]:
    """The staff, their book, one rep task each and a manager task on Acme; a token each."""
    tokens = {}
    for key, (name, email, role) in PEOPLE.items():
        add_staff(engine, name, email, role, actor="test")
        tokens[key] = create_token(engine, name, email)[1]
    with session_scope(engine) as session:
        for cid, manager, rep in BOOK:
            session.add(customer(cid, manager, rep))
    with session_scope(engine) as session:
        session.add(task("acme:rep", "acme", "rep", "riley@team.test"))
        session.add(task("acme:manager", "acme", "manager", "sam@team.test"))
        session.add(task("globex:rep", "globex", "rep", "robin@team.test"))
    return tokens


@pytest.fixture
async def api(settings: Settings, engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings=settings, engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the API: rep on the account, rep on another, manager, admin ---------------------------

SEES_CUSTOMERS = {
    "rep": ["acme"],
    "other_rep": ["globex"],
    "manager": ["acme", "globex"],
    "admin": ["acme", "globex"],
}


@pytest.mark.parametrize("who", list(SEES_CUSTOMERS))
async def test_customer_list_shows_a_rep_their_accounts_only(
    api: httpx.AsyncClient, team: dict[str, str], who: str
) -> None:
    listed = await api.get("/customers", headers=bearer(team[who]))
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()["items"]] == SEES_CUSTOMERS[who]


@pytest.mark.parametrize(
    ("who", "status", "tasks"),
    [
        ("rep", 200, ["acme:rep"]),  # their own task, not the manager's
        ("other_rep", 404, None),  # contact emails and margins stay hidden
        ("manager", 200, ["acme:manager", "acme:rep"]),
        ("admin", 200, ["acme:manager", "acme:rep"]),
    ],
)
async def test_one_customer_is_for_its_rep_and_the_managers(
    api: httpx.AsyncClient, team: dict[str, str], who: str, status: int, tasks: list[str] | None
) -> None:
    detail = await api.get("/customers/acme", headers=bearer(team[who]))
    assert detail.status_code == status, detail.text
    if tasks is not None:
        assert sorted(t["id"] for t in detail.json()["open_tasks"]) == tasks
        assert detail.json()["customer"]["rep"] == "riley@team.test"
    else:
        assert "dana@acme.test" not in detail.text


@pytest.mark.parametrize(
    ("who", "inbox", "complete_status"),
    [
        ("rep", ["acme:rep"], None),  # theirs: completion goes on to the lifecycle
        ("other_rep", ["globex:rep"], 403),  # before this change any rep completed it
        ("manager", ["acme:manager", "acme:rep", "globex:rep"], None),
        ("admin", ["acme:manager", "acme:rep", "globex:rep"], None),
    ],
)
async def test_a_rep_sees_and_completes_their_own_tasks_only(
    api: httpx.AsyncClient,
    team: dict[str, str],
    who: str,
    inbox: list[str],
    complete_status: int | None,
) -> None:
    shown = await api.get("/tasks", headers=bearer(team[who]))
    assert sorted(t["id"] for t in shown.json()) == inbox
    if complete_status is not None:
        refused = await api.post(
            "/tasks/acme:rep/complete", headers=bearer(team[who]), json={"result": {}}
        )
        assert refused.status_code == complete_status


@pytest.mark.parametrize(
    ("who", "list_status", "add_status", "assign_status"),
    [
        ("rep", 403, 403, 403),
        ("other_rep", 403, 403, 403),
        ("manager", 200, 403, 200),
        ("admin", 200, 201, 200),
    ],
)
async def test_staff_and_assignment_routes_by_role(
    api: httpx.AsyncClient,
    team: dict[str, str],
    who: str,
    list_status: int,
    add_status: int,
    assign_status: int,
) -> None:
    auth = bearer(team[who])
    assert (await api.get("/staff", headers=auth)).status_code == list_status
    new = {"name": "Kim", "email": f"kim.{who}@team.test", "role": "rep"}
    assert (await api.post("/staff", headers=auth, json=new)).status_code == add_status
    moved = await api.post(
        "/customers/acme/assignment", headers=auth, json={"rep": "robin@team.test"}
    )
    assert moved.status_code == assign_status
    assert (await api.post("/staff/riley@team.test/deactivate", headers=auth)).status_code == (
        200 if who == "admin" else 403
    )


async def test_staff_api_refuses_bad_input_naming_the_field(
    api: httpx.AsyncClient, team: dict[str, str]
) -> None:
    admin = bearer(team["admin"])
    listed = (await api.get("/staff", headers=admin)).json()
    assert {p["email"]: p["open_accounts"] for p in listed}["sam@team.test"] == 1
    again = await api.post(
        "/staff", headers=admin, json={"name": "Sam", "email": "SAM@team.test", "role": "rep"}
    )
    assert again.status_code == 422 and again.json()["error"]["field"] == "email"
    to_rep = await api.post(
        "/customers/acme/assignment", headers=admin, json={"manager": "riley@team.test"}
    )
    assert to_rep.status_code == 422 and to_rep.json()["error"]["field"] == "manager"
    assert "is a rep, not a manager" in to_rep.json()["error"]["message"]
    token = await api.post("/tokens", headers=admin, json={"name": "x", "person": "no@team.test"})
    assert token.status_code == 422 and token.json()["error"]["field"] == "person"


async def test_a_deactivated_persons_tokens_stop_at_once(
    api: httpx.AsyncClient, engine: Engine, team: dict[str, str]
) -> None:
    assert (await api.get("/tasks", headers=bearer(team["rep"]))).status_code == 200
    set_active(engine, "riley@team.test", False, actor="test")
    assert (await api.get("/tasks", headers=bearer(team["rep"]))).status_code == 401


async def test_a_token_acts_with_its_persons_current_role(
    api: httpx.AsyncClient, engine: Engine, team: dict[str, str]
) -> None:
    with session_scope(engine) as session:
        riley = session.exec(select(Staff).where(Staff.email == "riley@team.test")).one()
        riley.role = Role.manager.value  # promoted
    listed = await api.get("/customers", headers=bearer(team["rep"]))
    assert [c["id"] for c in listed.json()["items"]] == ["acme", "globex"]


# -- the dashboard: the same rules on the same records --------------------------------------


@pytest.mark.parametrize("who", ["rep", "other_rep", "manager", "admin"])
async def test_dashboard_shows_each_role_what_the_api_does(
    api: httpx.AsyncClient, team: dict[str, str], who: str
) -> None:
    await login(api, team[who])
    listing = (await api.get("/app/customers")).text
    for cid in ("acme", "globex"):
        assert (f'href="/app/customers/{cid}"' in listing) == (cid in SEES_CUSTOMERS[who])
    page = await api.get("/app/customers/acme")
    assert page.status_code == (200 if "acme" in SEES_CUSTOMERS[who] else 404)
    inbox = (await api.get("/app/tasks")).text
    assert ("/app/tasks/acme:rep" in inbox) == (who != "other_rep")
    assert ("/app/tasks/acme:manager" in inbox) == (who in ("manager", "admin"))
    task_page = await api.get("/app/tasks/acme:rep")
    assert task_page.status_code == (403 if who == "other_rep" else 200)


# -- assignment -----------------------------------------------------------------------------


def opening(customer_id: str, named: str | None) -> LifecycleSnapshot:
    profile = CustomerProfile(
        customer_id=customer_id, company=customer_id.title(), contact_name="Pat",
        email=f"pat@{customer_id}.test", owner=named,
    )  # fmt: skip
    return LifecycleSnapshot(
        customer=profile, plan_name="default", plan_version=1, phase=Phase.onboarding,
        term=1, term_start=NOW, term_end=NOW + timedelta(days=365), onboarded=False,
    )  # fmt: skip


def open_account(engine: Engine, customer_id: str, named: str | None = None) -> Customer:
    with session_scope(engine) as session:
        return save_lifecycle(session, opening(customer_id, named), opening=True)


@pytest.fixture
def managers(engine: Engine) -> None:
    """Sam has two open accounts; Max one open and two churned; Lee none but is inactive."""
    for name, email in (
        ("Sam", "sam@team.test"),
        ("Max", "max@team.test"),
        ("Lee", "lee@team.test"),
    ):
        add_staff(engine, name, email, "manager", actor="test")
    add_staff(engine, "Riley", "riley@team.test", "rep", actor="test")
    set_active(engine, "lee@team.test", False, actor="test")
    with session_scope(engine) as session:
        for cid, owner, phase in [
            ("s1", "sam@team.test", "adopting"), ("s2", "sam@team.test", "onboarding"),
            ("m1", "max@team.test", "renewal"), ("m2", "max@team.test", "churned"),
            ("m3", "max@team.test", "churned"),
        ]:  # fmt: skip
            session.add(customer(cid, owner, phase=phase))


def test_a_new_account_goes_to_the_manager_with_fewest_open_accounts(
    engine: Engine, managers: None
) -> None:
    assert open_account(engine, "n1").owner == "max@team.test"  # 1 open (churned don't count)
    assert open_account(engine, "n2").owner == "max@team.test"  # 2 and 2: ties by email
    assert open_account(engine, "n3").owner == "sam@team.test"


def test_a_sign_up_may_name_its_manager(engine: Engine, managers: None) -> None:
    assert open_account(engine, "n1", named="SAM@team.test").owner == "sam@team.test"
    # Someone who is not an active manager cannot be named: the usual rule applies.
    assert open_account(engine, "n2", named="riley@team.test").owner == "max@team.test"
    assert open_account(engine, "n3", named="lee@team.test").owner == "max@team.test"


def test_a_snapshot_never_moves_an_account(engine: Engine, managers: None) -> None:
    open_account(engine, "n1", named="sam@team.test")
    reassign_account(engine, "n1", "ada@team.test", manager="max@team.test")
    later = opening("n1", named="sam@team.test").model_copy(update={"phase": Phase.adopting})
    with session_scope(engine) as session:
        save_lifecycle(session, later)
    with Session(engine) as session:
        assert session.get(Customer, "n1").owner == "max@team.test"  # type: ignore[union-attr]


def record_task(engine: Engine, customer_id: str, key: str, role: Role) -> TaskRecord:
    new = Task(
        task_id=f"{customer_id}:t1:{key}", customer_id=customer_id, kind=TaskKind.playbook,
        title=key, owner_role=role, assignee=None, due_at=NOW + timedelta(days=2),
        created_at=NOW,
    )  # fmt: skip
    entry = TimelineEntry(
        customer_id=customer_id, key=f"{new.task_id}:opened", at=NOW, kind="task_opened",
        message=key,
    )  # fmt: skip
    with session_scope(engine) as session:
        return save_task(session, TaskUpdate(task=new, event=entry))


def test_every_task_is_assigned_to_a_person_or_the_managers_queue(
    engine: Engine, managers: None
) -> None:
    with session_scope(engine) as session:
        session.add(customer("acme", "sam@team.test", "riley@team.test"))
    assert record_task(engine, "acme", "call", Role.rep).assignee == "riley@team.test"
    assert record_task(engine, "acme", "plan", Role.manager).assignee == "sam@team.test"
    # No rep on the account: the managers' queue (no assignee: reps do not see it).
    assert record_task(engine, "s1", "call", Role.rep).assignee is None


def test_reassignment_moves_open_tasks_and_is_audited(engine: Engine, managers: None) -> None:
    with session_scope(engine) as session:
        session.add(customer("acme", "sam@team.test", None))
        session.add(task("acme:rep", "acme", "rep", None))
        session.add(task("acme:manager", "acme", "manager", "sam@team.test"))
        session.add(task("acme:done", "acme", "manager", "sam@team.test", status="done"))
    moved = reassign_account(
        engine, "Acme", "ada@team.test", manager="max@team.test", rep="riley@team.test"
    )
    assert (moved.manager, moved.rep) == ("max@team.test", "riley@team.test")
    assert sorted(moved.tasks_moved) == ["acme:manager", "acme:rep"]
    with Session(engine) as session:
        assignees = {t.id: t.assignee for t in session.exec(select(TaskRecord))}
        audit = session.exec(select(AuditEntry).order_by(AuditEntry.id)).all()  # type: ignore[arg-type]
    assert assignees["acme:done"] == "sam@team.test"  # finished work keeps its author
    moves = [(a.actor, a.action, a.subject, a.detail) for a in audit if "reassigned" in a.action]
    assert moves == [
        ("ada@team.test", "account.reassigned", "acme",
         {"field": "manager", "from": "sam@team.test", "to": "max@team.test"}),
        ("ada@team.test", "account.reassigned", "acme",
         {"field": "rep", "from": None, "to": "riley@team.test"}),
        ("ada@team.test", "task.reassigned", "acme:manager",
         {"from": "sam@team.test", "to": "max@team.test"}),
        ("ada@team.test", "task.reassigned", "acme:rep", {"from": None, "to": "riley@team.test"}),
    ]  # fmt: skip
    assert all(a.at is not None for a in audit)
    # A rep task can go to a rep or a manager; a manager task only to a manager.
    assert reassign_task(engine, "acme:rep", "sam@team.test", "max@team.test").assignee == (
        "sam@team.test"
    )
    with pytest.raises(StaffError, match=r"assignee: riley@team\.test is a rep, not a manager"):
        reassign_task(engine, "acme:manager", "riley@team.test", "max@team.test")
    with pytest.raises(StaffError, match=r"rep: lee@team\.test is not an active staff member"):
        reassign_account(engine, "acme", "ada@team.test", rep="lee@team.test")


# -- the migration: existing tokens and owners become people ---------------------------------


def test_the_migration_turns_token_persons_and_owners_into_staff(engine: Engine) -> None:
    migrate.downgrade(engine, "0006")
    with engine.begin() as connection:
        for name, role, person in [
            ("Riley laptop", "rep", "Riley@Team.test"),
            ("Ops", "admin", None),
            ("Sam", "manager", "sam@team.test"),
        ]:
            connection.execute(
                text(
                    "INSERT INTO api_token (name, role, person, token_hash, prefix, created_at) "
                    "VALUES (:name, :role, :person, :hash, 'tdm_x', :at)"
                ),
                {"name": name, "role": role, "person": person, "hash": name, "at": NOW},
            )
        connection.execute(
            text(
                "INSERT INTO customer (id, company, contact_name, email, owner, plan_name, "
                "plan_version, phase, term, term_start, term_end, onboarded, quadrant, at_risk, "
                "created_at, updated_at) VALUES ('acme', 'Acme', 'Dana', 'd@acme.test', "
                "'Lee@Team.test', 'default', 1, 'adopting', 1, :at, :at, false, 'unknown', "
                "false, :at, :at)"
            ),
            {"at": NOW},
        )
    migrate.upgrade(engine)
    with Session(engine) as session:
        people = {s.email: s.role for s in session.exec(select(Staff))}
        tokens = {t.name: t.staff_id for t in session.exec(select(ApiToken))}
        staff_ids = {s.email: s.id for s in session.exec(select(Staff))}
        owner = session.get(Customer, "acme").owner  # type: ignore[union-attr]
    assert people == {
        "riley@team.test": "rep",
        "sam@team.test": "manager",
        "lee@team.test": "manager",
    }
    assert tokens == {
        "Riley laptop": staff_ids["riley@team.test"], "Ops": None, "Sam": staff_ids["sam@team.test"]
    }  # fmt: skip
    assert owner == "lee@team.test"


# -- the team's metrics per person ---------------------------------------------------------


def test_team_metrics_per_rep_and_per_manager(engine: Engine, team: dict[str, str]) -> None:
    now = datetime.now(UTC)
    ago = now - timedelta(days=10)
    with session_scope(engine) as session:
        acme = session.get(Customer, "acme")
        globex = session.get(Customer, "globex")
        assert acme and globex
        acme.created_at = globex.created_at = now - timedelta(days=200)
        acme.level, acme.previous_level, acme.assessed_at = 0.5, 0.2, ago
        acme.renewal_outcome = "renewed"
        globex.phase = "churned"
        session.add(
            TimelineEvent(customer_id="globex", key="c", at=ago, kind="churned", message="x")
        )
        for id, hours, late in (("r1", 24, False), ("r2", 72, True)):
            done = task(f"acme:{id}", "acme", "rep", "riley@team.test", status="done")
            done.created_at = ago
            done.completed_at = ago + timedelta(hours=hours)
            done.due_at = done.completed_at + timedelta(hours=-1 if late else 1)
            done.completed_by = "riley@team.test"
            session.add(done)
        renewal = task("acme:renewal", "acme", "manager", "sam@team.test", status="done")
        renewal.kind, renewal.completed_at = "renewal", ago
        session.add(renewal)
        for kind, value in (("nps", 10), ("nps", 5), ("fcr", 0.8), ("aht", 12)):
            session.add(SignalRecord(customer_id="acme", kind=kind, value=value, observed_at=ago))
    with Session(engine) as session:
        people = team_report(session, now=now, period_days=30).people
    reps = {r.email: r for r in people.reps}
    riley, robin = reps["riley@team.test"], reps["robin@team.test"]
    assert (riley.accounts, riley.open_tasks, riley.tasks_done, riley.tasks_on_time) == (1, 1, 2, 1)
    assert riley.handle_hours == 48.0 and riley.fcr_mean == 0.8 and riley.aht_mean == 12
    assert (robin.accounts, robin.tasks_done, robin.fcr_mean) == (0, 0, None)  # Globex churned
    managers = {m.email: m for m in people.managers}
    sam, max_ = managers["sam@team.test"], managers["max@team.test"]
    assert (sam.retention_rate, sam.nps, sam.nps_responses) == (1.0, 0.0, 2)
    assert (sam.improved, sam.declined, sam.renewals) == (1, 0, {"renewed": 1})
    assert (max_.active_at_start, max_.churned, max_.retention_rate, max_.nps) == (1, 1, 0.0, None)


async def test_the_team_page_and_api_break_metrics_down_per_person(
    api: httpx.AsyncClient, team: dict[str, str]
) -> None:
    report = (await api.get("/metrics/team", headers=bearer(team["manager"]))).json()
    assert [r["email"] for r in report["people"]["reps"]] == ["riley@team.test", "robin@team.test"]
    assert [m["email"] for m in report["people"]["managers"]] == ["max@team.test", "sam@team.test"]
    await login(api, team["manager"])
    page = (await api.get("/app/team")).text
    for email in ("riley@team.test", "robin@team.test", "max@team.test", "sam@team.test"):
        assert f'data-person="{email}"' in page


# -- the CLI: the same rules for whoever runs it ---------------------------------------------


@pytest.mark.parametrize(
    ("who", "customers", "tasks"),
    [
        ("riley@team.test", ["acme"], ["acme:rep"]),
        ("robin@team.test", ["globex"], ["globex:rep"]),
        ("sam@team.test", ["acme", "globex"], ["acme:manager", "acme:rep", "globex:rep"]),
        (None, ["acme", "globex"], ["acme:manager", "acme:rep", "globex:rep"]),  # an operator
    ],
)
def test_the_cli_shows_a_rep_their_accounts_and_tasks(
    engine: Engine,
    settings: Settings,
    team: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    who: str | None,
    customers: list[str],
    tasks: list[str],
) -> None:
    from typer.testing import CliRunner

    from cli import app

    monkeypatch.setenv("TANDEM_DATABASE_URL", settings.resolved_database_url)
    if who:
        monkeypatch.setenv("TANDEM_STAFF_EMAIL", who)
    runner = CliRunner()
    listed = json.loads(runner.invoke(app, ["customers", "--json"]).output)
    assert sorted(c["id"] for c in listed) == customers
    shown = runner.invoke(app, ["show", "acme"])
    assert (shown.exit_code == 0) == ("acme" in customers), shown.output
    inbox = json.loads(runner.invoke(app, ["tasks", "--json"]).output)
    assert sorted(t["id"] for t in inbox) == tasks
    if who == "robin@team.test":
        refused = runner.invoke(app, ["complete", "acme:rep", "--result", "-"], input="{}")
        assert refused.exit_code == 1 and "their own tasks only" in refused.output


# -- through the real worker: sign-up, a rep's task, its completion --------------------------


async def test_a_lifecycle_gives_work_to_the_accounts_people(acme: Lifecycle) -> None:
    """The account goes to the least busy manager at sign-up; once it has a rep, the
    playbook a check-in opens is theirs: another rep can neither see nor complete it,
    they can, through the lifecycle."""
    async with api_for(acme.h) as api:
        # api_for puts Ada (admin), Sam (manager), Riley and Robin (reps) on the staff.
        await acme.sign_up()
        await acme.advance(hours=1)
        with Session(acme.h.engine) as session:
            account = session.get(Customer, acme.customer_id)
            assert account is not None and account.owner == "sam@team.test"
        kickoff = acme.task_row(acme.task_id("kickoff"))
        assert kickoff is not None and kickoff.assignee == "sam@team.test"
        moved = await api.post(
            f"/customers/{acme.customer_id}/assignment", json={"rep": "riley@team.test"}
        )
        assert moved.status_code == 200 and moved.json()["tasks_moved"] == []
        await acme.signals(**PROFILE)
        await acme.advance(days=31)
        playbook = acme.task_id("playbook-check_in-1")
        row = acme.task_row(playbook)
        assert row is not None and row.assignee == "riley@team.test"
        assert (await api.get("/tasks", role="other_rep")).json() == []
        result = {"result": {"kind": "playbook", "notes": "Called the champion"}}
        refused = await api.post(f"/tasks/{playbook}/complete", role="other_rep", json=result)
        assert refused.status_code == 403
        done = await api.post(f"/tasks/{playbook}/complete", role="rep", json=result)
        assert done.status_code == 200 and done.json()["completed_by"] == "riley@team.test"


async def test_managers_find_a_reps_book_on_the_dashboard(
    api: httpx.AsyncClient, team: dict[str, str]
) -> None:
    await login(api, team["manager"])
    page = (await api.get("/app/customers?rep=riley@team.test")).text
    assert 'href="/app/customers/acme"' in page and "/app/customers/globex" not in page
    account = (await api.get("/app/customers/acme")).text
    assert "manager sam@team.test" in account and "rep riley@team.test" in account
