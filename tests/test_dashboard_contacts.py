"""The customer page's contact forms over HTTP: the real app, a real session, records on
SQLite and PostgreSQL; a champion marked as left on the time-skipping server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from api.main import create_app
from db.assignment import reassign_account
from db.queries import contacts_of
from models.contacts import Contact
from models.tables import AuditEntry, TaskRecord, TimelineEvent
from settings import Settings
from tests.api_support import staff_tokens
from tests.conftest import Lifecycle
from tests.test_contacts import sign_up
from tests.test_dashboard import Dash, login

PAGE = "/app/customers/acme"
ADD = "/app/customers/acme/contacts"
CHANGE = "/app/customers/acme/contacts/change"


@pytest.fixture
async def dash(engine: Engine, settings: Settings) -> AsyncIterator[Dash]:
    """The app without a reachable Temporal: adding and changing contacts needs none
    (only a champion leaving is told to a lifecycle, tested on the real server below)."""
    app = create_app(
        settings=settings.model_copy(update={"temporal_address": "127.0.0.1:9"}), engine=engine
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Dash(http, staff_tokens(engine))


def contacts(engine: Engine) -> dict[str, Contact]:
    with Session(engine) as session:
        return {c.email: c for c in session.exec(select(Contact).order_by(col(Contact.id)))}


def section(html: str) -> str:
    return html.split('id="contacts-heading"')[1].split("</section>")[0]


async def test_a_manager_adds_a_contact_through_the_form(engine: Engine, dash: Dash) -> None:
    sign_up(engine)  # Dana, admin and champion
    csrf = await login(dash.http, dash.tokens["manager"])
    page = await dash.http.get(PAGE)
    assert f'action="{ADD}"' in page.text and f'action="{CHANGE}"' in page.text
    form = {"csrf": csrf, "name": " Walt ", "email": "Walt@Acme.test"}
    done = await dash.http.post(ADD, data=form | {"roles": ["billing", "executive_sponsor"]})
    assert done.status_code == 303 and done.headers["location"] == f"{PAGE}#contacts-heading"
    shown = await dash.http.get(PAGE)
    assert "Added Walt &lt;walt@acme.test&gt;." in shown.text  # the notice
    listed = section(shown.text)
    assert "Walt &lt;walt@acme.test&gt;" in listed and "executive sponsor, billing" in listed
    walt = contacts(engine)["walt@acme.test"]
    assert walt.roles == ["executive_sponsor", "billing"] and walt.source == "dashboard"
    # No role ticked: a user, as the API's default.
    await dash.http.post(ADD, data={"csrf": csrf, "name": "Uma", "email": "uma@acme.test"})
    assert contacts(engine)["uma@acme.test"].roles == ["user"]
    with Session(engine) as session:
        actors = session.exec(select(AuditEntry.actor).where(AuditEntry.action == "contact.added"))
        assert list(actors) == ["sam@team.test", "sam@team.test"]


@pytest.mark.parametrize(
    ("form", "field", "says"),
    [
        ({"name": "Fox", "email": "fox-at-acme"}, "email", "email"),
        ({"name": "Fox", "email": "fox@acme.test", "roles": "ceo"}, "roles", "champion"),
        ({"name": "Dana again", "email": "DANA@acme.test"}, "email", "already a contact"),
        ({"name": "  ", "email": "fox@acme.test"}, "name", "blank"),
    ],
    ids=["bad-email", "unknown-role", "duplicate", "blank-name"],
)
async def test_bad_input_is_named_beside_its_field_and_nothing_is_written(
    engine: Engine, dash: Dash, form: dict[str, str], field: str, says: str
) -> None:
    sign_up(engine)
    csrf = await login(dash.http, dash.tokens["manager"])
    refused = await dash.http.post(ADD, data={"csrf": csrf, **form})
    assert refused.status_code == 422
    error = refused.text.split(f'id="contact-{field}-error">')[1].split("</p>")[0]
    assert says in error, error
    assert f'<a href="#contact-{field}">{field}</a>' in refused.text  # the summary names it
    assert f'value="{form["email"]}"' in refused.text  # what they typed is kept
    assert list(contacts(engine)) == ["dana@acme.test"]


async def test_roles_opt_out_and_leaving_through_the_forms(engine: Engine, dash: Dash) -> None:
    sign_up(engine)
    csrf = await login(dash.http, dash.tokens["manager"])
    new = {"csrf": csrf, "name": "Walt", "email": "walt@acme.test", "roles": "billing"}
    await dash.http.post(ADD, data=new)
    walt = {"csrf": csrf, "email": "walt@acme.test"}

    roles = await dash.http.post(
        CHANGE, data=walt | {"action": "roles", "roles": ["user", "admin"]}
    )
    assert roles.status_code == 303
    assert contacts(engine)["walt@acme.test"].roles == ["admin", "user"]
    # An unknown role: the page again, the message at Walt's form, nothing changed.
    bad = await dash.http.post(CHANGE, data=walt | {"action": "roles", "roles": ["boss"]})
    assert bad.status_code == 422 and "roles: Input should be" in bad.text
    assert contacts(engine)["walt@acme.test"].roles == ["admin", "user"]

    await dash.http.post(CHANGE, data=walt | {"action": "opt_out"})
    assert contacts(engine)["walt@acme.test"].unsubscribed_at is not None
    listed = section((await dash.http.get(PAGE)).text)
    assert "· unsubscribed" in listed and "Opt back in" in listed
    await dash.http.post(CHANGE, data=walt | {"action": "opt_in"})
    assert contacts(engine)["walt@acme.test"].unsubscribed_at is None

    left = await dash.http.post(CHANGE, data=walt | {"action": "left"})
    assert left.status_code == 303
    row = contacts(engine)["walt@acme.test"]
    assert row.status == "left" and row.left_at is not None
    assert "A champion left" not in (await dash.http.get(PAGE)).text  # Walt was none
    with Session(engine) as session:
        kinds = session.exec(select(TimelineEvent.kind).where(TimelineEvent.customer_id == "acme"))
        assert "contact_left" in list(kinds)
        changes = session.exec(
            select(AuditEntry.detail).where(AuditEntry.action == "contact.changed")
        )
        assert list(changes) == [
            {"roles": ["user", "admin"]},
            {"unsubscribed": True},
            {"unsubscribed": False},
            {"status": "left"},
        ]
    gone = await dash.http.post(
        CHANGE, data={"csrf": csrf, "email": "x@acme.test", "action": "left"}
    )
    assert gone.status_code == 404


async def test_a_rep_sees_no_forms_and_a_forged_post_is_refused(engine: Engine, dash: Dash) -> None:
    sign_up(engine)
    reassign_account(engine, "acme", "sam@team.test", rep="riley@team.test")
    csrf = await login(dash.http, dash.tokens["rep"])
    page = await dash.http.get(PAGE)
    assert page.status_code == 200 and "dana@acme.test" in section(page.text)
    assert "<form" not in section(page.text)
    new = {"csrf": csrf, "name": "Fox", "email": "fox@acme.test"}
    assert (await dash.http.post(ADD, data=new)).status_code == 403
    left = {"csrf": csrf, "email": "dana@acme.test", "action": "left"}
    assert (await dash.http.post(CHANGE, data=left)).status_code == 403
    assert list(contacts(engine)) == ["dana@acme.test"]
    assert contacts(engine)["dana@acme.test"].status == "active"


async def test_a_form_without_the_sessions_csrf_token_is_refused(
    engine: Engine, dash: Dash
) -> None:
    sign_up(engine)
    await login(dash.http, dash.tokens["manager"])
    new = {"name": "Fox", "email": "fox@acme.test"}
    for sent in ({}, {"csrf": "forged"}):
        refused = await dash.http.post(ADD, data=new | sent)
        assert refused.status_code == 403 and "This form has expired." in refused.text
        left = {"email": "dana@acme.test", "action": "opt_out"} | sent
        assert (await dash.http.post(CHANGE, data=left)).status_code == 403
    assert list(contacts(engine)) == ["dana@acme.test"]
    assert contacts(engine)["dana@acme.test"].unsubscribed_at is None


# -- a champion marked as left opens the playbook, as through the API --------------------


async def test_a_champion_marked_as_left_opens_the_playbook_task_once(
    acme: Lifecycle, dash_on_server: Dash
) -> None:
    await acme.sign_up()
    await acme.advance(hours=1)
    http = dash_on_server.http
    with Session(acme.h.engine) as session:
        (champion,) = [c.email for c in contacts_of(session, acme.customer_id)]
    csrf = await login(http, dash_on_server.tokens["manager"])
    change = f"/app/customers/{acme.customer_id}/contacts/change"
    left = {"csrf": csrf, "email": champion, "action": "left"}
    done = await http.post(change, data=left)
    assert done.status_code == 303, done.text
    page = (await http.get(f"/app/customers/{acme.customer_id}")).text
    assert "A champion left: the champion-left playbook task opens." in page
    # Marked again (a second person, a resent form): no champion is lost twice.
    assert (await http.post(change, data=left)).status_code == 303
    assert "A champion left" not in (await http.get(f"/app/customers/{acme.customer_id}")).text
    await acme.advance(hours=1)
    status = await acme.status()
    opened = [t for t in status.open_tasks if t.playbook == "champion_left"]
    assert [t.task_id for t in opened] == [acme.task_id(f"champion-left:{champion}")]
    with Session(acme.h.engine) as session:
        rows = session.exec(select(TaskRecord.id).where(TaskRecord.playbook == "champion_left"))
        assert list(rows) == [opened[0].task_id]


@pytest.fixture
async def dash_on_server(acme: Lifecycle) -> AsyncIterator[Dash]:
    from tests.test_dashboard import build_app, tokens

    transport = httpx.ASGITransport(app=build_app(acme.h))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Dash(http, tokens(acme.h))
