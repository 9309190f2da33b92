"""Email: templates, the outbox (compose), and delivery by file and by real SMTP."""

from __future__ import annotations

import asyncio
import email
import hashlib
import re
import smtplib
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from sqlalchemy import Engine, event
from sqlmodel import select
from temporalio.exceptions import ApplicationError

from activities.accounts import AccountActivities
from activities.assessment import AssessmentActivities
from activities.contracts import (
    AccountOpening,
    EmailRequest,
    LifecycleSnapshot,
    Recipient,
    TaskNotice,
    TaskUpdate,
    TimelineEntry,
)
from activities.email import EmailActivities
from activities.email_context import build_context
from activities.message import message_id
from activities.records import RecordActivities
from activities.rendering import (
    CUSTOMER_TEMPLATES,
    STAFF_TEMPLATES,
    TEMPLATES,
    preview,
    render_email,
    sample_context,
)
from db.engine import make_engine, session_scope
from db.migrate import upgrade
from models.customer import CustomerProfile
from models.lifecycle import Phase
from models.roles import Role
from models.scoring import Quadrant
from models.signals import readable
from models.tables import (
    AssessmentRecord,
    Customer,
    GoalRecord,
    OutboxEmail,
    SignalRecord,
    SuccessPlanRecord,
    TaskRecord,
    TimelineEvent,
)
from models.tasks import Task, TaskKind
from settings import Settings

TAG = re.compile(r"</?[A-Za-z][^>]*>")
NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
FROM = "Tandem Success Team <success@tandem.invalid>"


# --- templates ------------------------------------------------------------------------


def test_measured_values_read_as_people_write_them() -> None:
    """One formatting for emails and pages: no 2.0, no 1.5e+06."""
    assert [readable(v) for v in (2.0, 1_500_000, 0.125, -3.5, None)] == [
        "2", "1,500,000", "0.12", "-3.5", "n/a",
    ]  # fmt: skip


def test_there_are_eight_templates() -> None:
    assert len(TEMPLATES) == 8
    assert set(CUSTOMER_TEMPLATES) | set(STAFF_TEMPLATES) == set(TEMPLATES)


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_renders(name: str) -> None:
    rendered = preview(name)
    assert rendered.subject.strip() and "\n" not in rendered.subject
    assert rendered.text.strip()
    assert rendered.html.strip().startswith("<!DOCTYPE html>")
    assert not TAG.search(rendered.text), f"HTML tag in the text part of {name}"
    assert "Acme Analytics" in rendered.text + rendered.subject


@pytest.mark.parametrize("name", TEMPLATES)
def test_html_escapes_the_data(name: str) -> None:
    context = sample_context(name)
    context["customer"]["company"] = "<script>alert(1)</script>"
    rendered = render_email(name, context)
    assert "&lt;script&gt;" in rendered.html
    assert "<script>alert" not in rendered.html
    assert "\n" not in rendered.subject


@pytest.mark.parametrize("quadrant", list(Quadrant))
@pytest.mark.parametrize("name", CUSTOMER_TEMPLATES)
def test_customers_never_see_profitability(name: str, quadrant: Quadrant) -> None:
    for score in (None, -0.8, 0.0, 0.8):
        context = sample_context(name)
        context["assessment"].update(quadrant=quadrant.value, customer_score=score)
        rendered = render_email(name, context)
        whole = f"{rendered.subject}\n{rendered.text}\n{rendered.html}".lower()
        assert "profitable" not in whole  # covers "unprofitable" too
        assert "company score" not in whole and "quadrant" not in whole


def test_staff_mail_shows_the_task_and_the_assessment() -> None:
    rendered = preview("task_escalation")
    for part in (rendered.text, rendered.html):
        assert "Kickoff call with Acme Analytics" in part
        assert "kickoff" in part and "UTC" in part
        assert "happy unprofitable" in part and "0.46" in part
        assert "The task is overdue." in part


def test_checkin_report_without_a_success_plan() -> None:
    context = sample_context("checkin_report") | {"success_plan": None, "goals": []}
    context["assessment"] = None
    rendered = render_email("checkin_report", context)
    assert "not captured your goals" in rendered.text
    assert "not captured your goals" in rendered.html


def test_checkin_report_with_goals_not_measured_yet() -> None:
    context = sample_context("checkin_report")
    for goal in context["goals"]:
        goal.update(current=None, progress=None)
    rendered = render_email("checkin_report", context)
    assert "not been able to measure your goals yet" in rendered.text
    assert "50%" not in rendered.text


def test_renewal_invite_asks_about_their_success_not_for_a_renewal() -> None:
    context = sample_context("renewal_invite")
    rendered = render_email("renewal_invite", context)
    assert context["success_plan"]["success_definition"] in rendered.text
    assert "how can we help you be more successful" in rendered.text.replace("\n", " ")
    assert "please renew" not in rendered.text.lower()
    assert "26 reps" in rendered.text and "50% of the way there" in rendered.text


def test_renewal_invite_without_a_success_plan_asks_for_one() -> None:
    """An account imported mid-term may never have had its kickoff: nothing to point
    back at, so the invite asks for their definition instead of whether "that" holds."""
    context = {**sample_context("renewal_invite"), "success_plan": None, "goals": []}
    for body in (
        render_email("renewal_invite", context).text,
        render_email("renewal_invite", context).html,
    ):
        flat = " ".join(body.split())
        assert "We never wrote down together what success means for you" in flat
        assert "still describe success" not in flat
        assert "how can we help you be more successful" in flat
    with_plan = render_email("renewal_invite", sample_context("renewal_invite")).text
    assert "Does that still describe success for you" in " ".join(with_plan.split())


def test_preview_of_an_unknown_template_lists_the_valid_ones() -> None:
    with pytest.raises(KeyError) as caught:
        preview("nope")
    assert isinstance(caught.value, ValueError)
    assert "welcome" in str(caught.value) and "task_escalation" in str(caught.value)


# --- the outbox -----------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    upgrade(engine)
    with session_scope(engine) as session:
        session.add(
            Customer(
                id="acme", company="Acme Analytics", contact_name="Dana Reyes",
                email="dana@acme.example", owner="sam@tandem.invalid", plan_name="standard",
                plan_version=1, phase="onboarding", term_start=NOW,
                term_end=NOW + timedelta(days=365),
            )
        )  # fmt: skip
    yield engine
    engine.dispose()


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        var_dir=tmp_path, smtp_host=None, smtp_username=None, smtp_password=None,
        smtp_starttls=False, smtp_timeout_seconds=5.0, mail_from=FROM,
        managers_email="managers@tandem.invalid",
    )  # fmt: skip
    return Settings(**(values | overrides))


def welcome(key: str = "acme:t1:welcome") -> EmailRequest:
    tutorials = [{"key": "pipeline", "title": "Your first pipeline", "url": "https://x.test/p"}]
    return EmailRequest(
        key=key, template="welcome", customer_id="acme", to=Recipient.customer,
        context={"tutorials": tutorials},
    )  # fmt: skip


def outbox(engine: Engine) -> list[OutboxEmail]:
    with session_scope(engine) as session:
        return list(session.exec(select(OutboxEmail)))


def test_compose_twice_stores_one_email(engine: Engine, tmp_path: Path) -> None:
    acts = EmailActivities(engine, make_settings(tmp_path))
    first = acts.compose_email(welcome())
    second = acts.compose_email(welcome())
    assert first == second
    # Composing tries one delivery at once (here into the .eml outbox); the second
    # compose finds it stored and sent, and neither renders nor sends again.
    assert first.to_address == "dana@acme.example" and first.already_delivered
    rows = outbox(engine)
    assert len(rows) == 1 and (rows[0].status, rows[0].attempts) == ("sent", 1)
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    assert "Your first pipeline" in rows[0].text_body
    assert 'href="https://x.test/p"' in rows[0].html_body


def opened_by(engine: Engine, settings: Settings) -> AccountActivities:
    """Sign-up's activities, with the outbox the worker gives them."""
    return AccountActivities(EmailActivities(engine, settings), AssessmentActivities(engine))


def account_opening(
    customer_id: str, company: str, email: str, start: datetime, owner: str | None = None
) -> AccountOpening:
    """What the lifecycle hands open_account when `company` signs up."""
    due = start + timedelta(days=7)
    profile = CustomerProfile(
        customer_id=customer_id, company=company, contact_name="Hank", email=email, owner=owner
    )
    task_id = f"{customer_id}:t1:kickoff"
    kickoff = Task(
        task_id=task_id,
        customer_id=customer_id,
        kind=TaskKind.kickoff,
        title=f"Kickoff with {company}",
        owner_role=Role.manager,
        assignee=owner,
        due_at=due,
        created_at=start,
    )
    return AccountOpening(
        snapshot=LifecycleSnapshot(
            customer=profile, plan_name="default", plan_version=2, phase=Phase.onboarding,
            term=1, term_start=start, term_end=start + timedelta(days=365), onboarded=False,
        ),
        entry=TimelineEntry(
            customer_id=customer_id, key="signed_up", at=start, kind="signed_up",
            message="Signed up",
        ),
        welcome=EmailRequest(
            key=f"{customer_id}:t1:welcome:{start:%Y}", template="welcome",
            customer_id=customer_id, to=Recipient.customer,
            context={"tutorials": [], "kickoff_by": due.isoformat()},
        ),
        kickoff=TaskNotice(
            update=TaskUpdate(
                task=kickoff,
                event=TimelineEntry(
                    customer_id=customer_id, key=f"{task_id}:task_opened:{start:%Y}", at=start,
                    kind="task_opened", message="Task opened for the manager",
                ),
            ),
            notice=EmailRequest(
                key=f"{task_id}:assigned:{start:%Y}", template="task_assigned",
                customer_id=customer_id, to=Recipient.manager, assignee=owner,
                context={"task_id": task_id},
            ),
        ),
    )  # fmt: skip


def test_open_account_stores_the_customer_the_kickoff_and_both_emails_once(
    engine: Engine, tmp_path: Path
) -> None:
    """Sign-up's one activity, run again as Temporal would retry it: one customer row,
    one kickoff task, their timeline entries, one welcome and one manager's notice,
    each sent once."""
    opening = account_opening("globex", "Globex", "hank@globex.test", NOW, "sam@tandem.invalid")
    due = opening.kickoff.update.task.due_at
    acts = opened_by(engine, make_settings(tmp_path))
    first = acts.open_account(opening)
    # Meanwhile the kickoff was held at once: the lifecycle recorded the next phase.
    RecordActivities(engine).record_lifecycle(
        opening.snapshot.model_copy(update={"phase": Phase.adopting, "onboarded": True})
    )
    assert acts.open_account(opening) == first  # a retry: it undoes nothing
    assert first.welcome.already_delivered and first.kickoff_notice.already_delivered
    with session_scope(engine) as session:
        customer = session.get(Customer, "globex")
        task = session.get(TaskRecord, "globex:t1:kickoff")
        events = session.exec(select(TimelineEvent).where(TimelineEvent.customer_id == "globex"))
        assert customer is not None and customer.company == "Globex"
        assert (customer.phase, customer.onboarded) == ("adopting", True)
        assert task is not None and task.status == "open"
        assert sorted(e.kind for e in events) == ["signed_up", "task_opened"]
    rows = {r.template: r for r in outbox(engine) if r.customer_id == "globex"}
    assert sorted(rows) == ["task_assigned", "welcome"]
    assert all((r.status, r.attempts) == ("sent", 1) for r in rows.values())
    assert rows["welcome"].to_address == "hank@globex.test"
    assert f"45 minutes before {due.day} {due:%B %Y}?" in rows["welcome"].text_body
    assert rows["task_assigned"].to_address == "sam@tandem.invalid"
    assert "Kickoff with Globex" in rows["task_assigned"].text_body


def test_a_new_customers_opening_reads_back_nothing_it_wrote(
    engine: Engine, tmp_path: Path
) -> None:
    """Sign-up is the busiest write path. For a customer new to the records there is
    no earlier attempt's email, no plan and no assessment to look up, and the customer
    it stores is not read again to render the emails."""
    statements: list[str] = []

    def spy(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", spy)
    opening = account_opening("globex", "Globex", "hank@globex.test", NOW)
    opened = opened_by(engine, make_settings(tmp_path)).open_account(opening)
    event.remove(engine, "before_cursor_execute", spy)
    assert opened.welcome.already_delivered and opened.kickoff_notice.already_delivered
    read = [s.split(" FROM ")[1].split()[0] for s in statements if s.startswith("SELECT")]
    # Only whether a customer row already stands there (a retry, or a customer signing
    # up again): it decides what is written; and the managers on the staff, to give the
    # new account its manager.
    assert read == ["customer", "staff"]
    assert sum(s.startswith("INSERT INTO outbox") for s in statements) == 2


def test_open_account_takes_over_the_row_of_an_ended_lifecycle(
    engine: Engine, tmp_path: Path
) -> None:
    """Acme churned and signs up again: the new lifecycle's record replaces the old."""
    with session_scope(engine) as session:
        old = session.get(Customer, "acme")
        assert old is not None
        old.phase, old.onboarded, old.churn_reason = "churned", True, "budget"
    start = NOW + timedelta(days=400)
    opening = account_opening("acme", "Acme Analytics", "dana@acme.example", start)
    opened_by(engine, make_settings(tmp_path)).open_account(opening)
    with session_scope(engine) as session:
        row = session.get(Customer, "acme")
        assert row is not None
        assert (row.phase, row.onboarded, row.term_start) == ("onboarding", False, start)
        assert (row.plan_version, row.churn_reason) == (2, None)


def test_concurrent_composes_store_one_email(engine: Engine, tmp_path: Path) -> None:
    acts = EmailActivities(engine, make_settings(tmp_path))
    with ThreadPoolExecutor(max_workers=4) as pool:
        receipts = list(pool.map(lambda _: acts.compose_email(welcome()), range(8)))
    assert len({r.key for r in receipts}) == 1
    assert len(outbox(engine)) == 1


@pytest.mark.parametrize(
    ("to", "assignee", "owner", "expected"),
    [
        # A rep task with no rep is in the managers' queue.
        (Recipient.rep, None, None, "managers@tandem.invalid"),
        (Recipient.rep, None, "sam@tandem.invalid", "sam@tandem.invalid"),
        (Recipient.rep, "ana@tandem.invalid", None, "ana@tandem.invalid"),
        (Recipient.manager, "lee@tandem.invalid", "sam@tandem.invalid", "lee@tandem.invalid"),
        (Recipient.manager, None, "sam@tandem.invalid", "sam@tandem.invalid"),
        (Recipient.manager, None, "Sam", "managers@tandem.invalid"),
        (Recipient.manager, None, None, "managers@tandem.invalid"),
    ],
)
def test_staff_recipients(
    engine: Engine, tmp_path: Path, to: Recipient, assignee: str | None, owner: str | None,
    expected: str,
) -> None:  # fmt: skip
    with session_scope(engine) as session:
        customer = session.get(Customer, "acme")
        assert customer is not None
        customer.owner = owner
    request = EmailRequest(
        key="acme:esc", template="task_escalation", customer_id="acme", to=to,
        assignee=assignee, context={"reason": "The task is overdue."},
    )  # fmt: skip
    receipt = EmailActivities(engine, make_settings(tmp_path)).compose_email(request)
    assert receipt.to_address == expected


def test_context_comes_from_the_records(engine: Engine, tmp_path: Path) -> None:
    with session_scope(engine) as session:
        plan = SuccessPlanRecord(
            customer_id="acme", version=1, author="sam", intended_use="pipeline",
            success_definition="every rep works from the pipeline", objectives=["a"],
            constraints=["b"], created_at=NOW,
        )  # fmt: skip
        session.add(plan)
        session.flush()
        assert plan.id is not None
        session.add(
            GoalRecord(
                plan_id=plan.id, customer_id="acme", key="reps", metric="Active reps",
                unit="reps", baseline=10, target=30, direction="increase",
                target_date=date(2025, 9, 1),
            )
        )  # fmt: skip
        for day, value in ((1, 14.0), (20, 20.0)):
            session.add(
                SignalRecord(
                    customer_id="acme", kind="goal", goal_key="reps", value=value,
                    observed_at=NOW + timedelta(days=day), client_id=f"s{day}",
                )
            )  # fmt: skip
        assessment = AssessmentRecord(
            customer_id="acme", key="a1", assessed_at=NOW, customer_score=0.4,
            company_score=0.3, quadrant="happy_profitable", level=0.35, trend=0.1, detail={},
        )  # fmt: skip
        session.add(assessment)
        # As the assessment activity stores it: the row keeps the latest standing.
        account = session.get(Customer, "acme")
        assert account is not None and account.stand(assessment)
        session.add(
            TaskRecord(
                id="acme:kickoff", customer_id="acme", kind="kickoff", title="Kickoff",
                owner_role="manager", status="open", due_at=NOW + timedelta(days=7),
                created_at=NOW,
            )
        )  # fmt: skip
    request = EmailRequest(
        key="k", template="task_assigned", customer_id="acme", to=Recipient.manager,
        context={"task_id": "acme:kickoff"},
    )  # fmt: skip
    with session_scope(engine) as session:
        customer = session.get(Customer, "acme")
        assert customer is not None
        context = build_context(session, customer, request, make_settings(tmp_path))
    assert context["sender"] == "Tandem Success Team"
    assert context["task_id"] == "acme:kickoff"
    assert context["task"]["title"] == "Kickoff" and context["task"]["due_at"].tzinfo
    assert context["success_plan"]["version"] == 1
    assert context["assessment"]["quadrant"] == "happy_profitable"
    assert context["assessment"]["trend"] == 0.1 and context["assessment"]["level"] == 0.35
    [goal] = context["goals"]
    assert goal["current"] == 20.0 and goal["progress"] == pytest.approx(0.5)
    assert goal["target_date"] == "2025-09-01"
    rendered = render_email("task_assigned", context)
    assert "Kickoff" in rendered.text
    # Staff mail opens the task on the dashboard (which asks them to sign in first).
    link = f"{make_settings(tmp_path).public_url.rstrip('/')}/app/tasks/acme:kickoff"
    assert f"Open it:   {link}" in rendered.text and f'href="{link}"' in rendered.html


# --- delivery -------------------------------------------------------------------------


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


def check_message(message: EmailMessage, key: str, customer: bool) -> None:
    types = [part.get_content_type() for part in message.walk()]
    assert "text/plain" in types and "text/html" in types
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert "<p>" not in plain.get_content() and "<p>" in html.get_content()
    expected_id = f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@tandem>"
    assert message["Message-ID"] == expected_id == message_id(key)
    assert message["From"] == FROM and message["Date"]
    if customer:
        assert message["To"] == "dana@acme.example"
        # The one-click link first (RFC 8058), the mailto for programs that only know mail.
        link, mailto = (part.strip() for part in str(message["List-Unsubscribe"]).split(","))
        assert link.startswith("<http") and "/u/" in link and link.endswith(">")
        assert mailto == "<mailto:success@tandem.invalid?subject=unsubscribe>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    else:
        assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None


def test_deliver_to_files_once(engine: Engine, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    acts = EmailActivities(engine, settings)
    receipt = acts.compose_email(welcome())
    acts.deliver_email(receipt.key)
    acts.deliver_email(receipt.key)
    files = list(settings.outbox_dir.iterdir())
    assert len(files) == 1 and files[0].suffix == ".eml"
    message = parse(files[0].read_bytes())
    check_message(message, receipt.key, customer=True)
    assert message["Subject"] == receipt.subject
    [row] = outbox(engine)
    assert (row.status, row.delivered_via, row.attempts) == ("sent", "file", 1)
    assert row.delivered_at is not None
    assert acts.compose_email(welcome()).already_delivered


def test_outbox_only_writes_no_files_and_delivers_nothing_later(
    engine: Engine, tmp_path: Path
) -> None:
    """TANDEM_EMAIL_FILES=false without a relay: the email is stored as delivered to the
    outbox in compose's own transaction, so nothing is left for deliver_email; a held
    email released later is recorded the same way. No .eml file either time."""
    settings = make_settings(tmp_path, email_files=False)
    acts = EmailActivities(engine, settings)
    receipt = acts.compose_email(welcome())
    assert receipt.already_delivered
    held = welcome("acme:t1:held").model_copy(update={"held": True})
    assert not acts.compose_email(held).already_delivered
    acts.deliver_email("acme:t1:held")
    rows = {row.key: row for row in outbox(engine)}
    for key in ("acme:t1:welcome", "acme:t1:held"):
        row = rows[key]
        assert (row.status, row.delivered_via, row.attempts) == ("sent", "outbox", 1)
        assert row.delivered_at is not None
    assert "Your first pipeline" in rows["acme:t1:welcome"].text_body
    assert not settings.outbox_dir.exists()


def test_staff_mail_has_no_unsubscribe(engine: Engine, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    acts = EmailActivities(engine, settings)
    request = EmailRequest(
        key="acme:esc", template="task_escalation", customer_id="acme", to=Recipient.manager,
        context={"reason": "The task is overdue."},
    )  # fmt: skip
    acts.deliver_email(acts.compose_email(request).key)
    [path] = settings.outbox_dir.iterdir()
    check_message(parse(path.read_bytes()), "acme:esc", customer=False)


def test_deliver_an_unknown_key_is_not_retried(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(ApplicationError) as caught:
        EmailActivities(engine, make_settings(tmp_path)).deliver_email("missing")
    assert caught.value.non_retryable


class Collector:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.logins: list[tuple[bytes, bytes]] = []
        self.quit_delay = 0.0  # seconds before answering QUIT

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Envelope) -> str:
        await asyncio.sleep(self.quit_delay)
        return "221 Bye"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"secret")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Collector, int]]:
    collector = Collector()
    port = free_port()
    controller = Controller(
        collector, hostname="127.0.0.1", port=port,
        authenticator=collector.authenticate, auth_require_tls=False,
    )  # fmt: skip
    controller.start()
    yield collector, port
    controller.stop()


@pytest.mark.parametrize("starttls", [False, True])  # True: the server offers none, go on
def test_deliver_by_smtp(
    engine: Engine, tmp_path: Path, smtp_server: tuple[Collector, int], starttls: bool
) -> None:
    collector, port = smtp_server
    settings = make_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=port,
                             smtp_starttls=starttls)  # fmt: skip
    acts = EmailActivities(engine, settings)
    receipt = acts.compose_email(welcome())
    acts.deliver_email(receipt.key)
    acts.deliver_email(receipt.key)
    [envelope] = collector.envelopes
    assert envelope.mail_from == "success@tandem.invalid"
    assert envelope.rcpt_tos == ["dana@acme.example"]
    assert isinstance(envelope.content, bytes)
    check_message(parse(envelope.content), receipt.key, customer=True)
    [row] = outbox(engine)
    assert (row.status, row.delivered_via, row.attempts) == ("sent", "smtp", 1)
    assert not settings.outbox_dir.exists()


def test_a_quit_that_times_out_after_the_message_was_accepted_is_still_sent(
    engine: Engine, tmp_path: Path, smtp_server: tuple[Collector, int]
) -> None:
    """The server took the message; only its goodbye is late. Counting that as a
    failure would have deliver_email send the message again."""
    collector, port = smtp_server
    collector.quit_delay = 1.0
    settings = make_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=port,
                             smtp_timeout_seconds=0.3)  # fmt: skip
    receipt = EmailActivities(engine, settings).compose_email(welcome())
    assert receipt.already_delivered and len(collector.envelopes) == 1
    [row] = outbox(engine)
    assert (row.status, row.delivered_via, row.attempts, row.last_error) == (
        "sent",
        "smtp",
        1,
        None,
    )


def test_words_outside_ascii_arrive_as_written(
    engine: Engine, tmp_path: Path, smtp_server: tuple[Collector, int]
) -> None:
    """A company, a contact and a sender name with accents and a long dash: encoded
    words in the headers, quoted-printable UTF-8 in the bodies, read back exactly."""
    with session_scope(engine) as session:
        acme = session.get(Customer, "acme")
        assert acme is not None
        acme.company, acme.contact_name = "Crème Brûlée \u2013 Société", "Zoë"
    collector, port = smtp_server
    settings = make_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=port,
                             mail_from="Équipe Succès <success@tandem.invalid>")  # fmt: skip
    receipt = EmailActivities(engine, settings).compose_email(welcome())
    [envelope] = collector.envelopes
    assert isinstance(envelope.content, bytes) and envelope.content.isascii()
    message = parse(envelope.content)
    assert (
        message["Subject"]
        == receipt.subject
        == ("Welcome, Crème Brûlée \u2013 Société: let's get you started")
    )
    assert message["From"] == "Équipe Succès <success@tandem.invalid>"
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert "Hi Zoë," in plain.get_content() and "Crème Brûlée \u2013 Société" in html.get_content()


def test_no_password_in_clear_when_starttls_is_turned_off(
    engine: Engine, tmp_path: Path, smtp_server: tuple[Collector, int]
) -> None:
    """Logging in over TLS is in tests/test_starttls.py; without it, nothing is sent."""
    collector, port = smtp_server
    settings = make_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=port,
                             smtp_username="tandem", smtp_password="secret")  # fmt: skip
    acts = EmailActivities(engine, settings)
    with pytest.raises(smtplib.SMTPNotSupportedError, match="TANDEM_SMTP_STARTTLS is false"):
        acts.deliver_email(acts.compose_email(welcome()).key)
    assert collector.logins == [] and collector.envelopes == []


def test_no_password_in_clear_when_starttls_is_missing(
    engine: Engine, tmp_path: Path, smtp_server: tuple[Collector, int]
) -> None:
    collector, port = smtp_server
    settings = make_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=True,
                             smtp_username="tandem", smtp_password="secret")  # fmt: skip
    acts = EmailActivities(engine, settings)
    with pytest.raises(smtplib.SMTPNotSupportedError, match="password without TLS"):
        acts.deliver_email(acts.compose_email(welcome()).key)
    assert collector.logins == [] and collector.envelopes == []
    [row] = outbox(engine)
    assert row.status == "pending" and "STARTTLS" in (row.last_error or "")


def test_refused_recipient_is_a_permanent_failure(
    engine: Engine, tmp_path: Path, smtp_server: tuple[Collector, int]
) -> None:
    _, port = smtp_server
    settings = make_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=port)
    acts = EmailActivities(engine, settings)
    with session_scope(engine) as session:
        session.get(Customer, "acme").email = "nobody@acme.example"
    with pytest.raises(ApplicationError, match="recipient refused") as refused:
        acts.deliver_email(acts.compose_email(welcome()).key)
    assert refused.value.non_retryable
    [row] = outbox(engine)
    assert row.status == "failed"


def test_sign_up_tries_the_relay_once_when_it_does_not_answer(
    engine: Engine, tmp_path: Path
) -> None:
    """The caller of a sign-up waits for open_account: with the relay down, the welcome's
    attempt fails and the manager's notice is left to deliver_email without a second
    wait on the same relay. Both are stored."""
    settings = make_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=free_port())
    opened = opened_by(engine, settings).open_account(
        account_opening("globex", "Globex", "hank@globex.test", NOW, "sam@tandem.invalid")
    )
    assert not opened.welcome.already_delivered and not opened.kickoff_notice.already_delivered
    attempts = {r.template: (r.status, r.attempts) for r in outbox(engine)}
    assert attempts == {"welcome": ("pending", 1), "task_assigned": ("pending", 0)}


class AcceptsOnce(Collector):
    """A relay that takes one message, then says 'try again later'."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        if self.envelopes:
            return "451 Try again later"
        return await super().handle_DATA(server, session, envelope)


def test_sign_up_records_the_welcome_sent_when_the_notice_fails(
    engine: Engine, tmp_path: Path
) -> None:
    """A failure of the next email must not leave a delivered welcome pending (a retry
    would send it twice)."""
    relay = AcceptsOnce()
    settings = make_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=free_port())
    controller = Controller(relay, hostname="127.0.0.1", port=settings.smtp_port)
    controller.start()
    try:
        opened = opened_by(engine, settings).open_account(
            account_opening("globex", "Globex", "hank@globex.test", NOW, "sam@tandem.invalid")
        )
    finally:
        controller.stop()
    assert len(relay.envelopes) == 1
    assert opened.welcome.already_delivered and not opened.kickoff_notice.already_delivered
    rows = {r.template: (r.status, r.attempts, r.delivered_via) for r in outbox(engine)}
    assert rows == {"welcome": ("sent", 1, "smtp"), "task_assigned": ("pending", 1, None)}


def test_an_attempt_cancelled_between_two_sends_records_the_first_sent(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Temporal cancels an activity through its heartbeat: cancelled after the welcome
    went out and before the notice, sign-up still records the welcome sent."""

    class Cancelled(BaseException):  # as the SDK's cancellation, not an Exception
        pass

    beats = 0

    def heartbeat() -> None:
        nonlocal beats
        beats += 1
        if beats == 3:  # before the transaction, before the welcome, before the notice
            raise Cancelled

    monkeypatch.setattr("activities.email._alive", heartbeat)
    opening = account_opening("globex", "Globex", "hank@globex.test", NOW, "sam@tandem.invalid")
    with pytest.raises(Cancelled):
        opened_by(engine, make_settings(tmp_path)).open_account(opening)
    rows = {r.template: (r.status, r.attempts) for r in outbox(engine)}
    assert rows == {"welcome": ("sent", 1), "task_assigned": ("pending", 0)}
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_smtp_outage_is_recorded_and_raised(engine: Engine, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=free_port())
    acts = EmailActivities(engine, settings)
    # Composing stores the email whatever the mail server does; its first attempt fails
    # quietly and leaves the email to deliver_email.
    receipt = acts.compose_email(welcome())
    assert not receipt.already_delivered
    with pytest.raises(OSError):
        acts.deliver_email(receipt.key)
    [row] = outbox(engine)
    assert (row.status, row.attempts, row.delivered_via) == ("pending", 2, None)
    assert row.last_error and "Connection" in row.last_error
    # Once the server is back, the retry delivers and counts as the third attempt.
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=settings.smtp_port)
    controller.start()
    try:
        acts.deliver_email(receipt.key)
    finally:
        controller.stop()
    assert len(collector.envelopes) == 1
    [row] = outbox(engine)
    assert (row.status, row.attempts, row.delivered_via) == ("sent", 3, "smtp")


def test_a_check_in_report_shows_what_a_fresh_read_would(engine: Engine, tmp_path: Path) -> None:
    """The report reuses the plan its assessment read and the standing it stored: the
    same as reading them again. An assessment that is not the latest (dated before the
    stored one) hands nothing over, and the report reads the records."""
    from activities.contracts import AssessmentRequest
    from activities.email_context import account_context
    from activities.records import save_success_plan
    from models.plan import ScoringSettings
    from models.success_plan import SuccessPlan
    from models.tasks import TaskKind, example_result

    opened_by(engine, make_settings(tmp_path)).open_account(
        account_opening("globex", "Globex", "hank@globex.test", NOW)
    )
    plan = SuccessPlan.model_validate(example_result(TaskKind.kickoff)["success_plan"])
    with session_scope(engine) as session:
        save_success_plan(session, "globex", 1, plan, "sam", NOW)
    assessments = AssessmentActivities(engine)

    def assessed(key: str, days: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
        request = AssessmentRequest(
            customer_id="globex", key=key, as_of=NOW + timedelta(days=days),
            scoring=ScoringSettings(),
        )  # fmt: skip
        with session_scope(engine) as session:
            done = assessments.assess_in(session, request)
            assert done.customer is not None
            session.flush()
            fresh = account_context(session, done.customer)
            if done.known is None:
                return fresh, None
            return fresh, account_context(session, done.customer, known=done.known)

    fresh, reused = assessed("check_in-1", 30)
    assert reused == fresh and fresh["goals"] and fresh["assessment"] is not None
    _, behind = assessed("check_in-0", 10)  # dated before check_in-1: not the latest
    assert behind is None
