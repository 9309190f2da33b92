"""Customer mail to an account's contacts: a copy per contact with their own links, each
contact's own opt-out (their link, or staff for them), copies sent once however often
an activity is retried, and a refused recipient marked bounced (a champion opens the
`champion_left` playbook, once). Real SMTP (aiosmtpd), the real API app, the real CLI,
the time-skipping Temporal server with the real worker; SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.exceptions import ApplicationError
from typer.testing import CliRunner

from activities.contracts import EmailRequest, Recipient
from activities.email import EmailActivities
from activities.message import copy_key, message_id
from api.main import create_app
from cli import app as cli_app
from db.contacts import add_contact
from db.engine import session_scope
from links import LinkSigner
from models.contacts import Contact, ContactRole, NewContact
from models.customer import SignUp
from models.tables import AuditEntry, Customer, OutboxEmail, TaskRecord, TimelineEvent
from plans import load_plan
from settings import Settings
from tests.api_support import staff_tokens
from tests.conftest import Harness, Lifecycle
from tests.test_email import parse
from tests.test_unsubscribe import FORM, NOW, ONE_CLICK, PUBLIC
from tests.test_unsubscribe import Inbox as Catch


class Inbox(Catch):
    def to(self, address: str) -> list[EmailMessage]:
        return [parse(e.content) for e in self.envelopes if e.rcpt_tos == [address]]  # type: ignore[arg-type]


class AcceptsOnce(Inbox):
    """A relay that takes one message, then says 'try again later' until told."""

    def __init__(self) -> None:
        super().__init__()
        self.full = True

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        if self.envelopes and self.full:
            return "451 Try again later"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def smtp() -> Iterator[AcceptsOnce]:
    inbox = AcceptsOnce()
    inbox.full = False
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    yield inbox
    controller.stop()


@pytest.fixture
def settings(settings: Settings, smtp: Inbox) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1", "smtp_port": smtp.port,
            "smtp_starttls": False, "smtp_username": None, "smtp_password": None,
            "public_url": PUBLIC,
        }
    )  # fmt: skip


def add_account(engine: Engine, *people: tuple[str, str, list[ContactRole]]) -> None:
    with session_scope(engine) as session:
        session.add(
            Customer(
                id="acme", company="Acme Analytics", contact_name="Dana Reyes",
                email="dana@acme.example", owner="sam@tandem.invalid", plan_name="default",
                plan_version=1, phase="onboarding", term_start=NOW,
                term_end=NOW + timedelta(days=365),
            )
        )  # fmt: skip
    for name, email, roles in people:
        add_contact(engine, "acme", NewContact(name=name, email=email, roles=roles), "test")


TEAM = (
    ("Ann Champion", "ann@acme.example", [ContactRole.champion, ContactRole.admin]),
    ("Ben User", "ben@acme.example", [ContactRole.user]),
)


def checkin(n: int) -> EmailRequest:
    return EmailRequest(
        key=f"acme:t1:check_in-{n}", template="checkin_report", customer_id="acme",
        to=Recipient.customer,
    )  # fmt: skip


def one_click_link(message: EmailMessage) -> str:
    return str(message["List-Unsubscribe"]).split(",")[0].strip("<> ")


def rows(engine: Engine, model: type, **where: str) -> list[Any]:
    with Session(engine) as session:
        query = select(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return list(session.exec(query).all())


def contact(engine: Engine, email: str) -> Contact:
    [row] = rows(engine, Contact, email=email)
    return row


@pytest.fixture
async def web(settings: Settings, engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        settings=settings.model_copy(update={"temporal_address": "127.0.0.1:9"}), engine=engine
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as http:
        yield http


# -- a copy per contact, each with their own links -----------------------------------------


async def test_a_contact_who_unsubscribes_gets_no_more_and_the_others_still_do(
    engine: Engine, settings: Settings, smtp: Inbox, web: httpx.AsyncClient
) -> None:
    add_account(engine, *TEAM)
    acts = EmailActivities(engine, settings)
    first = acts.compose_email(checkin(1))
    assert first.already_delivered and first.to_address == "ann@acme.example, ben@acme.example"
    [to_ann], [to_ben] = smtp.to("ann@acme.example"), smtp.to("ben@acme.example")
    # Each copy is its own message, to one person, greeted by name, with links of its own.
    assert to_ann["To"] == "ann@acme.example" and to_ben["To"] == "ben@acme.example"
    assert to_ann["Message-ID"] == message_id(copy_key(first.key, "ann@acme.example"))
    assert to_ann["Message-ID"] != to_ben["Message-ID"]
    assert "Hi Ann Champion," in to_ann.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    signer = LinkSigner(settings.secret_key, PUBLIC)
    assert one_click_link(to_ann) == signer.unsubscribe_link("acme", "ann@acme.example")
    assert one_click_link(to_ben) == signer.unsubscribe_link("acme", "ben@acme.example")

    # Ann's mail program unsubscribes her, one click (twice: recorded once).
    path = urlsplit(one_click_link(to_ann)).path
    for _ in range(2):
        done = await web.post(path, headers=FORM, **ONE_CLICK)
        assert done.status_code == 200 and "ann@acme.example" in done.text
    assert contact(engine, "ann@acme.example").unsubscribed_at is not None
    assert contact(engine, "ben@acme.example").unsubscribed_at is None
    assert rows(engine, Customer)[0].unsubscribed_at is None  # the account is not
    [audit] = rows(engine, AuditEntry, action="email.unsubscribed")
    assert (audit.subject, audit.actor) == ("acme:ann@acme.example", "contact:ann@acme.example")
    [line] = rows(engine, TimelineEvent, kind="email_unsubscribed")
    assert line.message.startswith("ann@acme.example unsubscribed")

    # The next check-in: Ben gets his, Ann's copy is kept back.
    second = acts.compose_email(checkin(2))
    acts.deliver_email(second.key)
    assert len(smtp.to("ann@acme.example")) == 1 and len(smtp.to("ben@acme.example")) == 2
    kept = {r.to_address: r.status for r in rows(engine, OutboxEmail, request_key=second.key)}
    assert kept == {"ann@acme.example": "suppressed", "ben@acme.example": "sent"}
    [noted] = rows(engine, TimelineEvent, kind="email_suppressed")
    assert "ann@acme.example unsubscribed" in noted.message

    # The page that confirmed it offers Ann (only her) the way back.
    back = LinkSigner(settings.secret_key, PUBLIC).resubscribe_link("acme", "ann@acme.example")
    assert "Welcome back" in (await web.post(urlsplit(back).path)).text
    third = acts.compose_email(checkin(3))
    assert third.already_delivered and len(smtp.to("ann@acme.example")) == 2


async def test_an_old_link_for_the_whole_account_still_stops_all_of_it(
    engine: Engine, settings: Settings, smtp: Inbox, web: httpx.AsyncClient
) -> None:
    """Mail sent before copies per contact carried the account's link: it still works,
    for the account as a whole, as it did."""
    add_account(engine, *TEAM)
    old = LinkSigner(settings.secret_key, PUBLIC).unsubscribe_link("acme")
    assert (await web.post(urlsplit(old).path, headers=FORM, **ONE_CLICK)).status_code == 200
    assert rows(engine, Customer)[0].unsubscribed_at is not None
    receipt = EmailActivities(engine, settings).compose_email(checkin(1))
    assert receipt.already_delivered and smtp.envelopes == []
    assert {r.status for r in rows(engine, OutboxEmail)} == {"suppressed"}


async def test_an_account_without_contacts_gets_the_account_link(
    engine: Engine, settings: Settings, smtp: Inbox
) -> None:
    add_account(engine)
    receipt = EmailActivities(engine, settings).compose_email(checkin(1))
    [message] = smtp.to("dana@acme.example")
    assert message["Message-ID"] == message_id(receipt.key)  # one copy: the step's own key
    signer = LinkSigner(settings.secret_key, PUBLIC)
    assert one_click_link(message) == signer.unsubscribe_link("acme")
    [row] = rows(engine, OutboxEmail)
    assert (row.key, row.request_key, row.contact_email) == (receipt.key, receipt.key, None)


async def test_staff_set_a_contacts_opt_out_by_the_api_and_the_cli(
    engine: Engine, settings: Settings, smtp: Inbox, web: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    add_account(engine, *TEAM)
    tokens = staff_tokens(engine)
    manager = {"Authorization": f"Bearer {tokens['manager']}"}
    path = "/customers/acme/contacts/ben@acme.example"
    done = await web.patch(path, json={"unsubscribed": True}, headers=manager)
    assert done.status_code == 200, done.text
    assert done.json()["contact"]["unsubscribed_at"] is not None
    [audit] = rows(engine, AuditEntry, action="email.unsubscribed")
    assert audit.detail["via"] == "staff" and audit.actor != "contact:ben@acme.example"
    rep = {"Authorization": f"Bearer {tokens['rep']}"}
    assert (await web.patch(path, json={"unsubscribed": False}, headers=rep)).status_code == 403
    EmailActivities(engine, settings).compose_email(checkin(1))
    assert smtp.to("ben@acme.example") == [] and len(smtp.to("ann@acme.example")) == 1

    monkeypatch.setenv("TANDEM_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("TANDEM_VAR_DIR", str(settings.var_dir))
    runner = CliRunner()
    back = runner.invoke(
        cli_app, ["contacts", "update", "acme", "ben@acme.example", "--subscribed"]
    )
    assert back.exit_code == 0 and "is active, user." in back.output, back.output
    assert contact(engine, "ben@acme.example").unsubscribed_at is None
    off = runner.invoke(
        cli_app, ["contacts", "update", "acme", "ann@acme.example", "--unsubscribed"]
    )
    assert off.exit_code == 0 and "unsubscribed" in off.output, off.output
    listed = json.loads(runner.invoke(cli_app, ["contacts", "list", "acme", "--json"]).output)
    assert [(c["email"], bool(c["unsubscribed_at"])) for c in listed] == [
        ("ann@acme.example", True),
        ("ben@acme.example", False),
    ]


# -- sent once per contact, however often it is retried -------------------------------------


async def test_a_retried_delivery_sends_only_the_copies_not_sent_yet(
    engine: Engine, settings: Settings, smtp: AcceptsOnce
) -> None:
    add_account(engine, *TEAM)
    smtp.full = True  # takes Ann's copy, then refuses for now
    acts = EmailActivities(engine, settings)
    receipt = acts.compose_email(checkin(1))
    assert not receipt.already_delivered
    status = {r.to_address: r.status for r in rows(engine, OutboxEmail)}
    assert status == {"ann@acme.example": "sent", "ben@acme.example": "pending"}
    assert acts.compose_email(checkin(1)) == receipt  # a retried compose sends nothing
    smtp.full = False
    acts.deliver_email(receipt.key)
    acts.deliver_email(receipt.key)  # and a retried delivery neither
    assert len(smtp.to("ann@acme.example")) == 1 and len(smtp.to("ben@acme.example")) == 1
    assert {r.status for r in rows(engine, OutboxEmail)} == {"sent"}


async def test_a_compose_leaves_copies_to_the_delivery_once_its_time_is_spent(
    engine: Engine, settings: Settings, smtp: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copies per contact must not stretch a compose past its timeout (its retry would
    send again): past the budget it sends no more, and deliver_email sends the rest."""
    add_account(engine, *TEAM)
    monkeypatch.setattr("activities.email.INLINE_BUDGET_SECONDS", -1.0)
    acts = EmailActivities(engine, settings)
    receipt = acts.compose_email(checkin(1))
    assert not receipt.already_delivered and len(smtp.envelopes) == 1  # the first copy
    acts.deliver_email(receipt.key)
    assert len(smtp.to("ann@acme.example")) == 1 and len(smtp.to("ben@acme.example")) == 1


# -- a refused recipient bounced ------------------------------------------------------------


async def test_a_refused_contact_is_bounced_and_the_others_still_get_it(
    engine: Engine, settings: Settings, smtp: Inbox
) -> None:
    add_account(engine, ("No Body", "nobody@acme.example", [ContactRole.champion]), TEAM[1])
    acts = EmailActivities(engine, settings)
    receipt = acts.compose_email(checkin(1))
    assert len(smtp.to("ben@acme.example")) == 1
    refused = contact(engine, "nobody@acme.example")
    assert refused.status == "bounced" and refused.left_at is not None
    assert contact(engine, "ben@acme.example").status == "active"
    acts.deliver_email(receipt.key)  # Ben got it: nothing to report, nothing sent again
    assert len(smtp.envelopes) == 1
    [line] = rows(engine, TimelineEvent, kind="champion_left")
    assert "No Body (champion) bounced" in line.message
    [audit] = rows(engine, AuditEntry, action="contact.bounced")
    assert audit.actor == "mail relay"
    # The next email goes to the contacts still reachable only.
    acts.compose_email(checkin(2))
    assert len(smtp.envelopes) == 2 and len(rows(engine, TimelineEvent, kind="champion_left")) == 1


async def test_when_every_recipient_is_refused_the_delivery_fails_for_good(
    engine: Engine, settings: Settings, smtp: Inbox
) -> None:
    add_account(engine, ("No Body", "nobody@acme.example", [ContactRole.user]))
    acts = EmailActivities(engine, settings)
    receipt = acts.compose_email(checkin(1))
    with pytest.raises(ApplicationError, match="recipient refused") as failed:
        acts.deliver_email(receipt.key)
    assert failed.value.non_retryable and smtp.envelopes == []
    assert contact(engine, "nobody@acme.example").status == "bounced"
    assert rows(engine, TimelineEvent, kind="contact_left")  # a user, not the champion


async def test_bounces_reported_later_by_the_api_and_the_cli(
    engine: Engine, settings: Settings, web: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_account(engine, *TEAM)
    tokens = staff_tokens(engine)
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    body = {"emails": ["Ann@Acme.example", "ghost@acme.example"]}
    manager = {"Authorization": f"Bearer {tokens['manager']}"}
    assert (await web.post("/contacts/bounces", json=body, headers=manager)).status_code == 403
    done = await web.post("/contacts/bounces", json=body, headers=admin)
    assert done.status_code == 200, done.text
    report = done.json()
    [bounced] = report["bounced"]
    assert bounced["contact"]["email"] == "ann@acme.example" and bounced["champion_left"]
    assert bounced["lifecycle"].startswith("not told")  # no Temporal in this test
    assert report["unknown"] == ["ghost@acme.example"]
    again = (await web.post("/contacts/bounces", json=body, headers=admin)).json()
    assert again["bounced"] == [] and again["unchanged"] == ["acme:ann@acme.example"]
    bad = await web.post("/contacts/bounces", json={"emails": ["not an address"]}, headers=admin)
    assert bad.status_code == 422
    assert len(rows(engine, TimelineEvent, kind="champion_left")) == 1

    monkeypatch.setenv("TANDEM_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("TANDEM_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("TANDEM_TEMPORAL_ADDRESS", "127.0.0.1:9")
    out = CliRunner().invoke(cli_app, ["contacts", "bounced", "ben@acme.example"])
    assert out.exit_code == 0 and "ben@acme.example> bounced" in out.output, out.output
    assert contact(engine, "ben@acme.example").status == "bounced"


# -- through the lifecycle: a bouncing champion opens the playbook, once ------------------


async def test_a_champion_refused_by_the_relay_opens_the_playbook_once(
    harness: Harness, smtp: Inbox
) -> None:
    """Sign-up's welcome goes to the person who signed up (admin and champion); the
    relay refuses the address. The worker marks them bounced and tells the lifecycle,
    which opens `champion_left` once, though the delivery is tried again after."""
    address = f"nobody@{uuid.uuid4().hex[:6]}.test"
    signup = SignUp(company="Nobody Inc", contact_name="No Body", email=address, plan="default")
    nobody = Lifecycle(harness, signup, load_plan("default"))
    await nobody.sign_up()
    await nobody.advance(hours=1)
    await nobody.advance(hours=1)
    status = await nobody.status()
    opened = [t for t in status.open_tasks if t.playbook == "champion_left"]
    assert [t.task_id for t in opened] == [nobody.task_id(f"champion-left:{address}")]
    with Session(harness.engine) as session:
        person = session.exec(select(Contact).where(Contact.email == address)).one()
        assert person.status == "bounced"
        tasks = session.exec(select(TaskRecord).where(TaskRecord.playbook == "champion_left"))
        assert len(list(tasks)) == 1
        kinds = list(
            session.exec(
                select(TimelineEvent.kind).where(TimelineEvent.customer_id == nobody.customer_id)
            )
        )
    assert kinds.count("champion_left") == 1
    assert [e.status for e in nobody.emails("welcome")] == ["failed"]
    assert smtp.to(address) == []
