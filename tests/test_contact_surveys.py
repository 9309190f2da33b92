"""Survey answers per contact: each contact's copy of the check-in carries survey links
naming them, `POST /signals` takes the contact who answered, and the account's NPS is
the net score of its active contacts' latest answers (an account with answers for the
account as a whole scores as before). The real app over ASGI and the real assessment
activity, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from activities.accounts import AccountActivities
from activities.assessment import AssessmentActivities
from activities.contracts import AssessmentRequest, CheckIn, EmailRequest, Recipient
from activities.email import EmailActivities
from api.main import create_app
from cli import app as cli_app
from db.contacts import add_contact, update_contact
from db.engine import session_scope
from db.ingest import record_signals
from models.contacts import ContactChange, ContactRole, ContactStatus, NewContact
from models.plan import ScoringSettings
from models.scoring.components import net_promoter_score
from models.signals import SignalIn, SignalKind
from models.tables import AssessmentRecord, Customer, OutboxEmail, SignalRecord
from settings import Settings
from tests.api_support import staff_tokens
from tests.conftest import Harness


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        "TANDEM_DATABASE_URL": settings.resolved_database_url,
        "TANDEM_VAR_DIR": str(settings.var_dir),
    }


NOW = datetime.now(UTC).replace(microsecond=0)
PUBLIC = "https://tandem.example"
PEOPLE = ("ann", "ben", "cat")


def add_account(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(
            Customer(
                id="acme", company="Acme Analytics", contact_name="Dana Reyes",
                email="dana@acme.example", owner="sam@tandem.invalid", plan_name="default",
                plan_version=1, phase="onboarding", term_start=NOW - timedelta(days=60),
                term_end=NOW + timedelta(days=300),
            )
        )  # fmt: skip
    for who in PEOPLE:
        new = NewContact(name=who.title(), email=f"{who}@acme.example", roles=[ContactRole.user])
        add_contact(engine, "acme", new, "test")


def answer(value: float, contact: str | None, days_ago: float = 1) -> SignalIn:
    return SignalIn(
        customer_id="acme", kind=SignalKind.nps, value=value, contact=contact,
        observed_at=NOW - timedelta(days=days_ago),
    )  # fmt: skip


def assess(engine: Engine, key: str) -> dict[str, float]:
    at = datetime.now(UTC)
    request = AssessmentRequest(customer_id="acme", key=key, as_of=at, scoring=ScoringSettings())
    assessment = AssessmentActivities(engine).assess_account(request)
    return {
        "component": assessment.components["nps"],
        **{k: v for k, v in assessment.inputs.items() if k.startswith(("nps", "net_"))},
    }


def test_a_check_in_stores_its_assessment_and_a_report_showing_it_once(
    engine: Engine, settings: Settings
) -> None:
    """One activity, one transaction: the report each contact gets is rendered from the
    assessment stored with it (there was none before), and Temporal retrying the
    activity after its commit finds both and stores nothing more."""
    add_account(engine)
    record_signals(engine, [answer(10, f"{who}@acme.example") for who in PEOPLE])
    mail = settings.model_copy(update={"smtp_host": None, "public_url": PUBLIC})
    acts = AccountActivities(EmailActivities(engine, mail), AssessmentActivities(engine))
    key = "acme:t1:check_in-1"
    check_in = CheckIn(
        assessment=AssessmentRequest(
            customer_id="acme", key=key, as_of=datetime.now(UTC), scoring=ScoringSettings()
        ),
        report=EmailRequest(
            key=key, template="checkin_report", customer_id="acme", to=Recipient.customer
        ),
    )
    first = acts.check_in(check_in)
    assert acts.check_in(check_in) == first
    assert first.assessment.components["nps"] == 1.0  # three promoters of three
    with Session(engine) as session:
        stored = session.exec(select(AssessmentRecord.key, AssessmentRecord.customer_score)).all()
        reports = session.exec(select(OutboxEmail.to_address, OutboxEmail.text_body)).all()
    assert stored == [(key, first.assessment.customer_score)]
    assert sorted(to for to, _ in reports) == [f"{who}@acme.example" for who in PEOPLE]
    # A report rendered without the assessment would say there is little feedback yet.
    assert all("things look like they are" in text for _, text in reports)


@pytest.fixture
async def web(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the time-skipping server's client: a survey answer is told to the
    lifecycle (here there is none, which refuses nothing)."""
    settings = harness.settings.model_copy(update={"public_url": PUBLIC})
    app = create_app(settings=settings, engine=harness.engine, client=harness.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as http:
        yield http


def test_the_net_score_by_hand() -> None:
    # Promoters answer 9-10, detractors 0-6, passives 7-8 count only in the total.
    assert net_promoter_score([10, 9, 3]) == pytest.approx(100 * (2 - 1) / 3)
    assert net_promoter_score([8, 7, 0, 10]) == 0
    assert net_promoter_score([6]) == -100


async def test_each_contacts_copy_has_their_survey_and_the_nps_nets_their_answers(
    engine: Engine, settings: Settings, web: httpx.AsyncClient
) -> None:
    add_account(engine)
    mail = settings.model_copy(update={"smtp_host": None, "public_url": PUBLIC})
    checkin = EmailRequest(
        key="acme:t1:check_in-1", template="checkin_report", customer_id="acme",
        to=Recipient.customer,
    )  # fmt: skip
    EmailActivities(engine, mail).compose_email(checkin)
    with Session(engine) as session:
        copies = {r.to_address: r.text_body for r in session.exec(select(OutboxEmail))}
    assert len(copies) == 3

    def link(who: str, value: int) -> str:
        # The NPS block of the text part lists "  <value>: <url>" for 0 to 10, then CSAT.
        nps_block = copies[f"{who}@acme.example"].split("1 = very")[0]
        [url] = re.findall(rf"^  {value}: (\S+)$", nps_block, re.MULTILINE)
        return url.removeprefix(PUBLIC)

    # Ann, Ben and Cat answer 10, 9 and 3 from their own copies: the NPS is
    # (2 promoters - 1 detractor) / 3 answers = +33.
    for who, value in (("ann", 10), ("ben", 9), ("cat", 3)):
        done = await web.post(link(who, value))
        assert done.status_code == 200 and f"({value})" in done.text, done.text
    again = await web.post(link("ann", 0))  # Ann's one answer to this survey is kept
    assert again.status_code == 409
    with Session(engine) as session:
        stored = session.exec(select(SignalRecord.contact_email, SignalRecord.value)).all()
    assert sorted(stored) == [
        ("ann@acme.example", 10.0), ("ben@acme.example", 9.0), ("cat@acme.example", 3.0),
    ]  # fmt: skip
    scored = assess(engine, "a1")
    assert scored["net_promoter_score"] == pytest.approx(33.3333, abs=1e-3)
    assert scored["nps_respondents"] == 3
    assert scored["component"] == pytest.approx(0.3333, abs=1e-3)  # net / 100


async def test_a_later_answer_replaces_the_contacts_earlier_one(
    engine: Engine, settings: Settings, web: httpx.AsyncClient
) -> None:
    add_account(engine)
    manager = {"Authorization": f"Bearer {staff_tokens(engine)['manager']}"}

    def body(value: int, contact: str, days_ago: float) -> dict[str, object]:
        at = (NOW - timedelta(days=days_ago)).isoformat()
        return {"customer_id": "acme", "kind": "nps", "value": value, "observed_at": at,
                "contact": contact}  # fmt: skip

    batch = [body(10, "Ann@acme.example", 5), body(9, "ben@acme.example", 5),
             body(3, "cat@acme.example", 5)]  # fmt: skip
    sent = await web.post("/signals", json={"signals": batch}, headers=manager)
    assert sent.status_code == 200, sent.text
    assert assess(engine, "a1")["net_promoter_score"] == pytest.approx(100 / 3, abs=1e-3)
    # Cat answers again, a promoter now: her earlier answer no longer counts. NPS = +100.
    sent = await web.post("/signals", json={"signals": [body(10, "cat@acme.example", 1)]},
                          headers=manager)  # fmt: skip
    assert sent.status_code == 200, sent.text
    assert assess(engine, "a2")["net_promoter_score"] == 100
    # Ben leaves the account: only active contacts count (Ann 10, Cat 10: still +100);
    # Ann leaves too and Cat's 10 alone is the figure.
    update_contact(
        engine, "acme", "ben@acme.example", ContactChange(status=ContactStatus.left), "t"
    )
    update_contact(
        engine, "acme", "ann@acme.example", ContactChange(status=ContactStatus.left), "t"
    )
    record_signals(engine, [answer(0, "cat@acme.example", days_ago=0.5)])
    assert assess(engine, "a3")["net_promoter_score"] == -100

    # From the command line too: Ben, back at the account, answers 10. NPS = (2 - 0) / 2.
    update_contact(
        engine, "acme", "ben@acme.example", ContactChange(status=ContactStatus.active), "t"
    )
    cli = ["signal", "acme", "nps", "10", "--contact", "ben@acme.example"]
    done = CliRunner().invoke(cli_app, cli, env=cli_env(settings))
    assert done.exit_code == 0, done.output
    assert assess(engine, "a4")["net_promoter_score"] == 0  # Cat 0, Ben 10
    stranger_cli = CliRunner().invoke(
        cli_app, [*cli[:-1], "who@elsewhere.example"], env=cli_env(settings)
    )
    assert stranger_cli.exit_code == 1 and "has no contact" in stranger_cli.output

    # A contact the account does not have is refused, naming the field.
    stranger = body(9, "who@elsewhere.example", 1)
    refused = await web.post("/signals", json={"signals": [stranger]}, headers=manager)
    assert refused.status_code == 422 and "signals.0.contact" in refused.text
    wrong_kind = {**body(9, "ann@acme.example", 1), "kind": "usage"}
    refused = await web.post("/signals", json={"signals": [wrong_kind]}, headers=manager)
    assert refused.status_code == 422 and "contact" in refused.text


async def test_answers_for_the_whole_account_score_as_before(engine: Engine) -> None:
    add_account(engine)
    record_signals(engine, [answer(10, None, 3), answer(4, None, 2)])
    scored = assess(engine, "a1")
    # No contact answered: the mean answer, (mean - 7) / 3, as always.
    assert scored == {"component": 0, "nps": 7} and assess(engine, "a1") == scored
    # Once contacts answer, their net score is the account's NPS.
    record_signals(engine, [answer(9, "ann@acme.example", 1)])
    assert assess(engine, "a2")["net_promoter_score"] == 100
