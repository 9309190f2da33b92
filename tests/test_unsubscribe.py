"""Unsubscribing: the one-click link in every customer email (header and footer), the
page behind it, and customer mail kept back afterwards while the team's work goes on.
Real SMTP (aiosmtpd), the real API app, the real time-skipping Temporal server, on
SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine
from sqlmodel import Session, select

import links
from activities.contracts import EmailRequest, Recipient
from activities.email import EmailActivities
from activities.message import message_id
from api.main import create_app
from db.engine import session_scope
from db.staff import add_staff
from db.tokens import create_token
from db.unsubscribe import set_unsubscribed
from links import LinkSigner
from models.tables import AuditEntry, Customer, OutboxEmail, TimelineEvent
from settings import Settings
from tests.conftest import Lifecycle
from tests.test_email import Collector, free_port, parse
from tests.test_lifecycle import GOOD

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
PUBLIC = "https://tandem.example"
ONE_CLICK = {"content": b"List-Unsubscribe=One-Click"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Inbox(Collector):
    """The test mail server's catch, and where it listens."""

    def __init__(self) -> None:
        super().__init__()
        self.port = free_port()


@pytest.fixture
def smtp() -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    yield inbox
    controller.stop()


@pytest.fixture
def settings(settings: Settings, smtp: Inbox) -> Settings:
    """The suite's settings (and so its database, and the worker's), with mail going to
    the test mail server and links to a public https address."""
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1", "smtp_port": smtp.port,
            "smtp_starttls": False, "smtp_username": None, "smtp_password": None,
            "public_url": PUBLIC,
        }
    )  # fmt: skip


def add_customer(engine: Engine, company: str = "Acme Analytics") -> Customer:
    customer = Customer(
        id="acme", company=company, contact_name="Dana Reyes", email="dana@acme.example",
        owner="sam@tandem.invalid", plan_name="default", plan_version=1, phase="onboarding",
        term_start=NOW, term_end=NOW + timedelta(days=365),
    )  # fmt: skip
    with session_scope(engine) as session:
        session.add(customer)
    return customer


def request(template: str, key: str, held: bool = False) -> EmailRequest:
    to = Recipient.customer if template != "task_assigned" else Recipient.manager
    context = {"tutorials": []} if template in ("welcome", "tutorial_nudge") else {}
    return EmailRequest(
        key=key, template=template, customer_id="acme", to=to, context=context, held=held
    )


def link_for(settings: Settings, customer_id: str = "acme") -> str:
    return LinkSigner(settings.secret_key, settings.public_url).unsubscribe_link(customer_id)


def rows(engine: Engine, model: type, **where: str) -> list:
    with Session(engine) as session:
        query = select(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return list(session.exec(query).all())


def customer(engine: Engine) -> Customer:
    with Session(engine) as session:
        row = session.get(Customer, "acme")
    assert row is not None
    return row


def sent(smtp: Inbox) -> list[EmailMessage]:
    return [parse(e.content) for e in smtp.envelopes]  # type: ignore[arg-type]


@pytest.fixture
async def web(settings: Settings, engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    """The API app on the test's records; the public pages need no Temporal client."""
    app = create_app(settings=settings, engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC) as http:
        yield http


# -- the link, in the headers and the footer ----------------------------------------------


def test_customer_mail_carries_the_one_click_link(
    engine: Engine, settings: Settings, smtp: Inbox
) -> None:
    add_customer(engine)
    acts = EmailActivities(engine, settings)
    acts.deliver_email(acts.compose_email(request("welcome", "acme:t1:welcome")).key)
    [message] = sent(smtp)
    link = link_for(settings)
    assert link.startswith(f"{PUBLIC}/u/")
    assert message["List-Unsubscribe"] == (
        f"<{link}>, <mailto:success@tandem.invalid?subject=unsubscribe>"
    )
    # As sent, not only as a parser decodes it: mail programs look for the plain <URL>
    # (RFC 2369); an RFC 2047 encoded word there would hide the one-click link.
    raw = smtp.envelopes[0].content
    assert f"List-Unsubscribe: <{link}>,".encode() in raw  # type: ignore[operator]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"] == message_id("acme:t1:welcome")
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert f"unsubscribe here: {link}" in plain.get_content()
    assert f'<a href="{link}"' in html.get_content()


# -- the page and the one-click POST ------------------------------------------------------


async def test_the_page_asks_and_changes_nothing(
    engine: Engine, settings: Settings, web: httpx.AsyncClient
) -> None:
    add_customer(engine, company="<script>alert(1)</script> Corp")
    page = await web.get(urlsplit(link_for(settings)).path)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "Stop automated emails?" in page.text and "dana@acme.example" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Corp" in page.text
    assert "<script>alert" not in page.text
    assert customer(engine).unsubscribed_at is None
    assert rows(engine, AuditEntry) == []


async def test_one_click_post_records_the_opt_out_once(
    engine: Engine, settings: Settings, web: httpx.AsyncClient
) -> None:
    add_customer(engine)
    path = urlsplit(link_for(settings)).path
    # As a mail program sends it (RFC 8058): no cookie, no CSRF token, just the body.
    for _ in range(2):
        done = await web.post(path, headers=FORM, **ONE_CLICK)
        assert done.status_code == 200 and "You are unsubscribed" in done.text
    row = customer(engine)
    assert row.unsubscribed_at is not None and row.unsubscribed_by == "customer:dana@acme.example"
    [audit] = rows(engine, AuditEntry)
    assert (audit.action, audit.subject, audit.actor) == (
        "email.unsubscribed", "acme", "customer:dana@acme.example",
    )  # fmt: skip
    assert audit.detail["via"] == "one-click from their mail program"
    [event] = rows(engine, TimelineEvent, customer_id="acme")
    assert event.kind == "email_unsubscribed" and "Unsubscribed" in event.message

    # The page that confirmed it offers the way back, by a link of its own; taking it is
    # recorded too. The unsubscribe link itself never resubscribes.
    page = await web.get(path)
    assert "You are unsubscribed" in page.text and "/r/" not in page.text
    assert (await web.post(f"{path}/resubscribe")).status_code == 404
    assert customer(engine).unsubscribed_at is not None
    back_link = LinkSigner(settings.secret_key, PUBLIC).resubscribe_link("acme")
    back = await web.post(urlsplit(back_link).path)
    assert back.status_code == 200 and "Welcome back" in back.text
    assert customer(engine).unsubscribed_at is None
    actions = sorted(a.action for a in rows(engine, AuditEntry))
    assert actions == ["email.resubscribed", "email.unsubscribed"]

    # The page's own button says where it came from.
    await web.post(path, data={"via": "page"})
    latest = max(rows(engine, AuditEntry), key=lambda a: a.id or 0)
    assert latest.action == "email.unsubscribed" and latest.detail["via"] == "unsubscribe page"


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-token",
        "eyJjdXN0b21lcl9pZCI6ImFjbWUifQ.forged-signature",  # {"customer_id": "acme"}
        "plan-link",  # a genuine signature, for another purpose
        "other-secret",
    ],
)
async def test_a_forged_link_is_refused_and_records_nothing(
    engine: Engine, settings: Settings, web: httpx.AsyncClient, bad: str
) -> None:
    add_customer(engine)
    token = {
        "plan-link": LinkSigner(settings.secret_key, PUBLIC).plan_link("acme").rsplit("/", 1)[1],
        "other-secret": LinkSigner("not ours", PUBLIC).unsubscribe_link("acme").rsplit("/", 1)[1],
    }.get(bad, bad)
    for response in (
        await web.get(f"/u/{token}"),
        await web.post(f"/u/{token}", headers=FORM, **ONE_CLICK),
        await web.get(f"/r/{token}"),
        await web.post(f"/r/{token}"),
    ):
        assert response.status_code == 400
        assert "This link is not valid." in response.text and "Nothing was changed" in response.text
    assert customer(engine).unsubscribed_at is None
    assert rows(engine, AuditEntry) == [] and rows(engine, TimelineEvent) == []


async def test_only_the_page_that_unsubscribed_offers_the_way_back(
    engine: Engine, settings: Settings, web: httpx.AsyncClient
) -> None:
    """Whoever holds an unsubscribe link (a forwarded email, a mail program's header) can
    stop the mail, and nothing more: an unsubscribe token is no resubscribe token."""
    add_customer(engine)
    path = urlsplit(link_for(settings)).path
    token = path.rsplit("/", 1)[1]
    done = await web.post(path, data={"via": "page"})
    [back_path] = re.findall(r'action="(/r/[^"]+)"', done.text)
    for attempt in (f"/r/{token}", f"{path}/resubscribe"):
        assert (await web.post(attempt)).status_code in (400, 404)
    assert customer(engine).unsubscribed_at is not None
    # A resubscribe token is no unsubscribe token either.
    assert (await web.post(f"/u/{back_path.rsplit('/', 1)[1]}")).status_code == 400

    shown = await web.get(back_path)  # opening the link changes nothing
    assert shown.status_code == 200 and 'action="/r/' in shown.text
    assert customer(engine).unsubscribed_at is not None
    assert "Welcome back" in (await web.post(back_path)).text
    assert customer(engine).unsubscribed_at is None
    via = [a.detail["via"] for a in rows(engine, AuditEntry)]
    assert sorted(via) == ["resubscribe link", "unsubscribe page"]


async def test_an_old_resubscribe_link_has_expired(
    engine: Engine, settings: Settings, web: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_customer(engine)
    await web.post(urlsplit(link_for(settings)).path)
    back = urlsplit(LinkSigner(settings.secret_key, PUBLIC).resubscribe_link("acme")).path
    monkeypatch.setattr(links, "RESUBSCRIBE_LINK_DAYS", -1)
    expired = await web.post(back)
    assert expired.status_code == 410 and customer(engine).unsubscribed_at is not None


async def test_a_link_for_an_unknown_customer_is_a_404(
    engine: Engine, settings: Settings, web: httpx.AsyncClient
) -> None:
    add_customer(engine)
    path = urlsplit(link_for(settings, "nobody")).path
    assert (await web.get(path)).status_code == 404
    assert (await web.post(path, headers=FORM, **ONE_CLICK)).status_code == 404
    assert rows(engine, AuditEntry) == []


async def test_operators_see_the_opt_out(
    engine: Engine, settings: Settings, web: httpx.AsyncClient
) -> None:
    add_customer(engine)
    assert set_unsubscribed(engine, "acme", True, "reply", actor="sam@tandem.invalid")
    assert not set_unsubscribed(engine, "acme", True, "reply", actor="sam@tandem.invalid")
    add_staff(engine, "Sam", "sam@team.test", "manager", actor="test")
    _, token = create_token(engine, "Sam", "sam@team.test")
    detail = await web.get("/customers/acme", headers={"Authorization": f"Bearer {token}"})
    assert detail.status_code == 200
    shown = detail.json()["customer"]
    assert shown["unsubscribed_at"] and shown["unsubscribed_by"] == "sam@tandem.invalid"


def test_staff_record_a_reply_from_the_cli(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mailto in List-Unsubscribe and the footer's "reply" reach a person, who
    records it: `tandem unsubscribe`, shown by `tandem show`."""
    from typer.testing import CliRunner

    from cli import app

    add_customer(engine)
    monkeypatch.setenv("TANDEM_DATABASE_URL", settings.resolved_database_url)
    runner = CliRunner()
    done = runner.invoke(app, ["unsubscribe", "Acme Analytics", "--by", "sam"])
    assert done.exit_code == 0 and "acme: unsubscribed." in done.output
    again = runner.invoke(app, ["unsubscribe", "acme", "--by", "sam"])
    assert "already" in again.output
    shown = runner.invoke(app, ["show", "acme"])
    assert "Unsubscribed from automated email" in shown.output and "(sam)" in shown.output
    [audit] = rows(engine, AuditEntry)
    assert (audit.actor, audit.detail["via"]) == ("sam", "cli")
    back = runner.invoke(app, ["unsubscribe", "acme", "--undo", "--by", "sam"])
    assert "subscribed again" in back.output and customer(engine).unsubscribed_at is None


# -- what is kept back, and what still goes -----------------------------------------------


def test_after_unsubscribing_customer_mail_is_kept_back_and_staff_mail_goes(
    engine: Engine, settings: Settings, smtp: Inbox
) -> None:
    add_customer(engine)
    acts = EmailActivities(engine, settings)
    # Composed before the opt-out, delivered after it (held for review, or retried).
    waiting = acts.compose_email(request("tutorial_nudge", "acme:t1:tutorial_nudge-1", True))
    assert set_unsubscribed(engine, "acme", True, "unsubscribe page")

    acts.deliver_email(waiting.key)
    acts.deliver_email(waiting.key)  # a retry changes nothing
    # Composed after it: kept back at once, so no delivery (or review task) follows.
    later = acts.compose_email(request("checkin_report", "acme:t1:check_in-1"))
    assert later.already_delivered
    acts.deliver_email(later.key)
    staff = acts.compose_email(request("task_assigned", "acme:t1:kickoff:assigned"))
    acts.deliver_email(staff.key)

    assert [m["Message-ID"] for m in sent(smtp)] == [message_id(staff.key)]
    by_key = {r.key: r for r in rows(engine, OutboxEmail)}
    for key in (waiting.key, later.key):
        assert by_key[key].status == "suppressed" and by_key[key].delivered_at is None
        assert "unsubscribed" in (by_key[key].last_error or "")
    assert by_key[staff.key].status == "sent"
    kept_back = rows(engine, TimelineEvent, kind="email_suppressed")
    assert sorted(e.key for e in kept_back) == sorted(
        f"{k}:suppressed" for k in by_key if k != staff.key
    )

    # Back in: the next customer email goes again.
    assert set_unsubscribed(engine, "acme", False, "unsubscribe page")
    again = acts.compose_email(request("checkin_report", "acme:t1:check_in-2"))
    acts.deliver_email(again.key)
    assert sent(smtp)[-1]["Message-ID"] == message_id(again.key)


async def wait_until(check, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Deliveries run in the background of the lifecycle: give them a moment."""
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    assert check()


async def test_a_lifecycle_after_one_click_goes_on_without_customer_mail(
    acme: Lifecycle, smtp: Inbox
) -> None:
    """Through the real worker: the link from the delivered welcome, clicked one-click;
    then a month of the lifecycle. Customer mail is kept back, the lifecycle goes on,
    tasks open and the team's emails about them arrive."""
    await acme.sign_up()
    await acme.advance(hours=1)
    await wait_until(lambda: any(m["Subject"].startswith("Welcome") for m in sent(smtp)))
    welcome = next(m for m in sent(smtp) if m["Subject"].startswith("Welcome"))
    link = str(welcome["List-Unsubscribe"]).split(",")[0].strip("<> ")
    app = create_app(settings=acme.h.settings, engine=acme.h.engine, client=acme.h.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        clicked = await http.post(link, headers=FORM, **ONE_CLICK)
    assert clicked.status_code == 200
    before = len(sent(smtp))

    await acme.signals(**GOOD)
    await acme.advance(days=31)
    status = await acme.status()
    assert status.last_assessment is not None  # the check-in ran
    playbook = acme.task_row(acme.task_id("playbook-check_in-1"))
    assert playbook is not None and playbook.status == "open"

    customer_mail = {"tutorial_nudge", "checkin_report"}
    await wait_until(lambda: all(e.status != "pending" for e in acme.emails()))
    kept_back = [e for e in acme.emails() if e.template in customer_mail]
    assert {e.template for e in kept_back} == customer_mail
    assert all(e.status == "suppressed" for e in kept_back)
    assigned = [e for e in acme.emails("task_assigned") if "playbook" in e.key]
    assert assigned and all(e.status == "sent" for e in assigned)
    arrived = {m["Message-ID"] for m in sent(smtp)[before:]}
    staff = {message_id(e.key) for e in acme.emails() if e.template.startswith("task_")}
    assert message_id(assigned[0].key) in arrived and arrived <= staff
    with Session(acme.h.engine) as session:
        noted = session.exec(
            select(TimelineEvent).where(
                TimelineEvent.customer_id == acme.customer_id,
                TimelineEvent.kind == "email_suppressed",
            )
        ).all()
    assert len(noted) == len(kept_back)
