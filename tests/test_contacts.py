"""Contacts: the people at an account, from sign-up, Segment's `identify`, the API and the
CLI; what each role may do; a champion who leaves is on the timeline (records on SQLite
and PostgreSQL, the real app over ASGI, the real CLI)."""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

import lifecycles
from api.main import create_app
from cli import app as cli_app
from db.contacts import addresses_for, update_contact
from db.queries import contacts_of
from db.sources import create_source
from models.contacts import ContactChange, ContactStatus
from models.tables import AuditEntry, TaskRecord, TimelineEvent
from settings import Settings
from tests.api_support import staff_tokens
from tests.conftest import Harness, Lifecycle
from tests.test_dashboard import login
from tests.test_email import account_opening, opened_by

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def sign_up(engine: Engine) -> None:
    """Acme's sign-up as the lifecycle's opening activity records it (Dana signs up)."""
    opening = account_opening("acme", "Acme", "Dana@Acme.test", NOW)
    opening.snapshot.customer.contact_name = "Dana Scully"
    opening.snapshot.customer.external_id = "ext-acme"
    mail = Settings(smtp_host=None, var_dir=Path(tempfile.mkdtemp(prefix="tandem-mail-")))
    opened_by(engine, mail).open_account(opening)


class Api:
    def __init__(self, http: httpx.AsyncClient, tokens: dict[str, str]) -> None:
        self.http, self.tokens = http, tokens

    async def call(self, method: str, path: str, who: str = "manager", **kw) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return await self.http.request(method, path, headers=headers, **kw)


@pytest.fixture
async def api(engine: Engine, settings: Settings) -> AsyncIterator[Api]:
    app = create_app(
        settings=settings.model_copy(update={"temporal_address": "127.0.0.1:9"}), engine=engine
    )
    tokens = staff_tokens(engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Api(http, tokens)


async def test_sign_up_makes_the_first_contact_admin_and_champion(engine: Engine, api: Api) -> None:
    sign_up(engine)
    sign_up(engine)  # a retried opening adds nobody
    listed = await api.call("GET", "/customers/acme/contacts")
    assert listed.status_code == 200, listed.text
    assert [(c["email"], c["roles"], c["status"], c["source"]) for c in listed.json()] == [
        ("dana@acme.test", ["champion", "admin"], "active", "signup")
    ]
    detail = await api.call("GET", "/customers/acme")
    assert [c["name"] for c in detail.json()["contacts"]] == ["Dana Scully"]


async def test_managers_add_change_and_remove_contacts(engine: Engine, api: Api) -> None:
    sign_up(engine)
    body = {"name": "Walter Skinner", "email": "walter@acme.test", "roles": ["executive_sponsor"]}
    added = await api.call("POST", "/customers/acme/contacts", json=body)
    assert added.status_code == 201, added.text
    again = await api.call("POST", "/customers/acme/contacts", json=body)
    assert again.status_code == 422 and again.json()["error"]["field"] == "email"
    bad = await api.call("POST", "/customers/acme/contacts", json={**body, "email": "nope"})
    assert bad.status_code == 422 and "email" in bad.text
    bad_role = await api.call("POST", "/customers/acme/contacts", json={**body, "roles": ["cfo"]})
    assert bad_role.status_code == 422 and "roles" in bad_role.text

    changed = await api.call(
        "PATCH", "/customers/acme/contacts/WALTER@acme.test",
        json={"roles": ["billing", "executive_sponsor"]},
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json()["contact"]["roles"] == ["executive_sponsor", "billing"]
    assert changed.json()["champion_left"] is False

    removed = await api.call("DELETE", "/customers/acme/contacts/walter@acme.test")
    assert removed.status_code == 200 and removed.json()["champion_left"] is False
    gone = await api.call("DELETE", "/customers/acme/contacts/walter@acme.test")
    assert gone.status_code == 404
    listed = await api.call("GET", "/customers/acme/contacts")
    assert [c["email"] for c in listed.json()] == ["dana@acme.test"]
    with Session(engine) as session:
        actions = session.exec(select(AuditEntry.action).where(AuditEntry.actor == "sam@team.test"))
        assert list(actions) == ["contact.added", "contact.changed", "contact.removed"]


async def test_reps_read_their_accounts_contacts_but_change_none(engine: Engine, api: Api) -> None:
    sign_up(engine)
    refused = await api.call(
        "POST", "/customers/acme/contacts", who="rep",
        json={"name": "Fox", "email": "fox@acme.test"},
    )  # fmt: skip
    assert refused.status_code == 403
    assert (await api.call("GET", "/customers/acme/contacts", who="rep")).status_code == 404
    assert (await api.call("GET", "/customers/nobody/contacts")).status_code == 404


async def test_a_champion_marked_as_left_is_on_the_timeline(engine: Engine, api: Api) -> None:
    sign_up(engine)
    left = await api.call(
        "PATCH", "/customers/acme/contacts/dana@acme.test", json={"status": "left"}
    )
    assert left.status_code == 200, left.text
    assert left.json()["champion_left"] is True
    assert left.json()["contact"]["status"] == "left"
    # Leaving again changes nothing: no champion is lost twice.
    again = await api.call(
        "PATCH", "/customers/acme/contacts/dana@acme.test", json={"status": "left"}
    )
    assert again.json()["champion_left"] is False
    with Session(engine) as session:
        kinds = session.exec(select(TimelineEvent.kind).where(TimelineEvent.customer_id == "acme"))
        assert list(kinds).count("champion_left") == 1
    # The account's page lists them, marked as gone.
    detail = await api.call("GET", "/customers/acme")
    assert detail.json()["contacts"][0]["status"] == "left"


async def test_identify_calls_add_contacts_to_the_account(engine: Engine, api: Api) -> None:
    sign_up(engine)
    _, key = create_source(engine, "web app")
    basic = httpx.BasicAuth(key, "")

    def identify(user: str, **traits: object) -> dict[str, object]:
        return {
            "type": "identify", "userId": user, "messageId": str(uuid.uuid4()),
            "timestamp": NOW.isoformat(), "traits": traits,
        }  # fmt: skip

    group = {
        "type": "group", "userId": "u2", "groupId": "ext-acme",
        "messageId": str(uuid.uuid4()), "timestamp": NOW.isoformat(),
    }  # fmt: skip
    batch = [
        group,
        identify(
            "u2", email="Mulder@acme.test", firstName="Fox", lastName="Mulder", role="billing"
        ),
        identify("u2", email="dana@acme.test", name="Dana", roles=["user"]),  # a role more
        identify("u2", name="no address"),
    ]
    sent = await api.http.post("/v1/batch", json={"batch": batch}, auth=basic)
    assert sent.status_code == 200, sent.text
    listed = await api.call("GET", "/customers/acme/contacts")
    contacts = {c["email"]: (c["name"], c["roles"], c["source"]) for c in listed.json()}
    assert contacts == {
        "dana@acme.test": ("Dana Scully", ["champion", "admin", "user"], "signup"),
        "mulder@acme.test": ("Fox Mulder", ["billing"], "segment"),
    }


@pytest.mark.parametrize("first", ["identify", "group"])
async def test_identify_and_group_in_either_order_make_the_contact(
    engine: Engine, api: Api, first: str
) -> None:
    """Separate requests, as a product sends them: the user's `identify` (with their
    address) and the `group` that ties them to the account, in either order."""
    sign_up(engine)
    _, key = create_source(engine, "web app")
    basic = httpx.BasicAuth(key, "")
    calls = {
        "identify": {
            "type": "identify", "userId": "u7", "messageId": str(uuid.uuid4()),
            "timestamp": NOW.isoformat(),
            "traits": {"email": "Kim@Acme.test", "name": "Kim Lee"},
        },
        "group": {
            "type": "group", "userId": "u7", "groupId": "ext-acme",
            "messageId": str(uuid.uuid4()), "timestamp": NOW.isoformat(),
            "traits": {"name": "Acme"},
        },
    }  # fmt: skip
    second = "group" if first == "identify" else "identify"
    for call in (calls[first], calls[second]):
        sent = await api.http.post(f"/v1/{call['type']}", json=call, auth=basic)
        assert sent.status_code == 200, sent.text
    listed = await api.call("GET", "/customers/acme/contacts")
    contacts = {c["email"]: (c["name"], c["roles"], c["source"]) for c in listed.json()}
    assert contacts["kim@acme.test"] == ("Kim Lee", ["user"], "segment")


async def test_a_group_call_names_its_user_in_context_traits(engine: Engine, api: Api) -> None:
    """Segment's libraries send the user's traits in `context.traits` on a `group` call,
    whose own traits describe the account: the user becomes a contact by those alone."""
    sign_up(engine)
    _, key = create_source(engine, "web app")
    group = {
        "type": "group", "userId": "u9", "groupId": "ext-acme",
        "messageId": str(uuid.uuid4()), "timestamp": NOW.isoformat(),
        "traits": {"name": "Acme", "email": "billing@acme.test"},
        "context": {"traits": {"email": "Ray@Acme.test", "name": "Ray", "role": "admin"}},
    }  # fmt: skip
    sent = await api.http.post("/v1/group", json=group, auth=httpx.BasicAuth(key, ""))
    assert sent.status_code == 200, sent.text
    listed = await api.call("GET", "/customers/acme/contacts")
    contacts = {c["email"]: (c["name"], c["roles"], c["source"]) for c in listed.json()}
    assert contacts["ray@acme.test"] == ("Ray", ["admin"], "segment")
    assert "billing@acme.test" not in contacts  # the account's own address is no person


def test_the_cli_adds_lists_and_marks_contacts_as_left(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("TANDEM_VAR_DIR", str(settings.var_dir))
    sign_up(engine)
    runner = CliRunner()
    added = runner.invoke(
        cli_app,
        ["contacts", "add", "Acme", "--name", "Walter", "--email", "walter@acme.test",
         "--role", "executive_sponsor", "--role", "champion"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "as champion, executive_sponsor" in added.output
    bad = runner.invoke(cli_app, ["contacts", "add", "acme", "--name", "X", "--email", "x@"])
    assert bad.exit_code == 1 and "email:" in bad.output
    left = runner.invoke(cli_app, ["contacts", "mark-left", "acme", "walter@acme.test"])
    assert left.exit_code == 0, left.output
    assert "has left" in left.output and "champion_left playbook opens" in left.output
    updated = runner.invoke(
        cli_app, ["contacts", "update", "acme", "dana@acme.test", "--role", "user"]
    )
    assert updated.exit_code == 0 and "is active, user" in updated.output, updated.output
    listed = runner.invoke(cli_app, ["contacts", "list", "acme", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(c["email"], c["status"]) for c in json.loads(listed.output)] == [
        ("dana@acme.test", "active"),
        ("walter@acme.test", "left"),
    ]
    removed = runner.invoke(cli_app, ["contacts", "remove", "acme", "nobody@acme.test"])
    assert removed.exit_code == 1 and "no contact" in removed.output

    # A rep at the command line: as in the API, they change nothing and read only
    # their own accounts' contacts (Acme is not theirs).
    staff_tokens(engine)
    monkeypatch.setenv("TANDEM_STAFF_EMAIL", "riley@team.test")
    refused = runner.invoke(cli_app, ["contacts", "mark-left", "acme", "dana@acme.test"])
    assert refused.exit_code == 1 and "managers and admins" in refused.output
    hidden = runner.invoke(cli_app, ["contacts", "list", "acme"])
    assert hidden.exit_code == 1 and "no customer 'acme'" in hidden.output


async def test_the_customer_page_shows_the_contacts(engine: Engine, api: Api) -> None:
    sign_up(engine)
    await api.call("PATCH", "/customers/acme/contacts/dana@acme.test", json={"status": "bounced"})
    await api.call("PATCH", "/customers/acme/contacts/dana@acme.test", json={"unsubscribed": True})
    await login(api.http, api.tokens["manager"])
    page = await api.http.get("/app/customers/acme")
    assert page.status_code == 200
    contacts = page.text.split('id="contacts-heading"')[1].split("</section>")[0]
    assert "Dana Scully &lt;dana@acme.test&gt;" in contacts
    assert "champion, admin" in contacts and "bounced" in contacts
    assert "· unsubscribed" in contacts


async def test_customer_email_goes_to_the_roles_its_template_names(
    engine: Engine, api: Api
) -> None:
    sign_up(engine)  # Dana: admin and champion
    for name, role in (("Walt", "executive_sponsor"), ("Bill", "billing"), ("Uma", "user")):
        body = {"name": name, "email": f"{name.lower()}@acme.test", "roles": [role]}
        assert (await api.call("POST", "/customers/acme/contacts", json=body)).status_code == 201
    await api.call("PATCH", "/customers/acme/contacts/uma@acme.test", json={"status": "left"})
    with Session(engine) as session:
        to = {t: addresses_for(session, "acme", t, "primary@acme.test") for t in TEMPLATES}
    assert to == {
        "welcome": "dana@acme.test",
        "renewal_invite": "dana@acme.test, walt@acme.test",
        "checkin_report": "dana@acme.test, walt@acme.test, bill@acme.test",  # not Uma: left
    }
    await api.call("DELETE", "/customers/acme/contacts/dana@acme.test")
    with Session(engine) as session:
        assert addresses_for(session, "acme", "welcome", "primary@acme.test") == (
            "primary@acme.test"  # nobody in the roles: the account's own address
        )


TEMPLATES = ("welcome", "renewal_invite", "checkin_report")

# -- the lifecycle: a champion who leaves opens the playbook, once -------------------------


async def test_a_champion_leaving_opens_the_playbook_task_once(acme: Lifecycle) -> None:
    await acme.sign_up()
    engine = acme.h.engine
    await acme.advance(hours=1)
    with Session(engine) as session:
        (champion,) = [c.email for c in contacts_of(session, acme.customer_id)]
    done = update_contact(
        engine, acme.customer_id, champion, ContactChange(status=ContactStatus.left), "test"
    )
    assert done.champion_left
    # Told twice (a retried request, a second person marking them): one task.
    for _ in range(2):
        told = await lifecycles.tell_champion_left(acme.h.client, acme.customer_id, champion)
        assert told == "told"
    await acme.advance(hours=1)
    status = await acme.status()
    opened = [t for t in status.open_tasks if t.playbook == "champion_left"]
    assert len(opened) == 1, status.open_tasks
    task = opened[0]
    assert task.task_id == acme.task_id(f"champion-left:{champion}")
    assert "Champion left" in task.title and task.owner_role.value == "manager"
    with Session(engine) as session:
        rows = session.exec(select(TaskRecord).where(TaskRecord.playbook == "champion_left"))
        assert [r.id for r in rows] == [task.task_id]
        kinds = list(
            session.exec(
                select(TimelineEvent.kind).where(TimelineEvent.customer_id == acme.customer_id)
            )
        )
    assert kinds.count("champion_left") == 1 and "task_opened" in kinds


async def test_a_lifecycle_is_told_only_when_there_is_one(harness: Harness) -> None:
    told = await lifecycles.tell_champion_left(harness.client, "nobody", "x@nobody.test")
    assert told == "no running lifecycle"
