"""Existing accounts imported mid-term: the lifecycle picks up from today (no welcome,
onboarding done, past steps skipped) and reaches its renewal conversation on the date
the plan puts it before the term's end (time-skipping server, real worker, records on
SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

import lifecycles
from account_import import check_file, decode
from cli import app as cli_app
from db.engine import make_engine
from db.migrate import upgrade
from db.queries import contacts_of
from models.customer import workflow_id_for
from models.imports import ImportedAccount, ImportedContact
from models.tables import Customer, OutboxEmail, SignalRecord, TimelineEvent
from models.webhooks import WebhookEvent
from settings import Settings
from tests.api_support import Api, api_for, staff_tokens
from tests.conftest import Harness, Lifecycle


async def import_acme(harness: Harness, lc: Lifecycle, account: ImportedAccount) -> bool:
    receipt = await lifecycles.import_account(
        harness.client, lc.signup, lc.plan, account, harness.task_queue
    )
    return receipt.new


async def test_an_imported_account_reaches_its_renewal_on_the_plans_date(
    harness: Harness, acme: Lifecycle
) -> None:
    now = await acme.now()
    start = now - timedelta(days=200)
    account = ImportedAccount(
        term_start=start,
        term_end=start + timedelta(days=365),
        mrr=1200,
        source="accounts.csv",
        contacts=[
            ImportedContact(name="Ada Lovelace", email=acme.signup.email, roles=["champion"]),
            ImportedContact(name="Bo", email="bo@acme.test", roles=["executive_sponsor"]),
            ImportedContact(name="Cy", email="cy@acme.test", roles=["user"]),
        ],
    )
    assert await import_acme(harness, acme, account)
    assert not await import_acme(harness, acme, account)  # the same row again: nothing new

    status = await acme.status()
    assert status.phase.value == "adopting" and status.onboarded
    assert status.term_end == account.term_end
    assert acme.emails() == []  # no welcome, no kickoff, no past check-in
    with Session(harness.engine) as session:
        row = session.get(Customer, acme.customer_id)
        assert row is not None and row.term_start == start and row.onboarded
        kinds = session.exec(
            select(TimelineEvent.kind).where(TimelineEvent.customer_id == acme.customer_id)
        ).all()
        assert "imported" in kinds and "signed_up" not in kinds
        events = session.exec(select(WebhookEvent.type)).all()
        assert "customer.imported" in events and "customer.signed_up" not in events
        contacts = contacts_of(session, acme.customer_id)
        assert [(c.name, [r.value for r in c.roles]) for c in contacts] == [
            ("Ada Lovelace", ["champion"]),
            ("Bo", ["executive_sponsor"]),
            ("Cy", ["user"]),
        ]
        mrr = session.exec(select(SignalRecord.value).where(SignalRecord.kind == "mrr")).all()
        assert mrr == [1200] and row.mrr == 1200  # on the row too, for the forecast

    # The renewal conversation opens 90 days before the term's end: 75 days from now.
    renewal_opens = account.term_end - timedelta(days=acme.plan.renewal.lead_days)
    await acme.advance(days=74)
    assert (await acme.status()).phase.value == "adopting"
    # The check-ins from the import on came at their dates (every 30 days from the
    # term's start): days 210, 240 and 270, none of the six before the import.
    # (Each a copy per contact, under the step's key.)
    keys = sorted(
        {(e.request_key or e.key).rsplit(":", 1)[1] for e in acme.emails("checkin_report")}
    )
    assert keys == ["check_in-7", "check_in-8", "check_in-9"]
    await acme.advance(days=2)
    status = await acme.status()
    assert status.phase.value == "renewal"
    renewal = acme.task_row(acme.task_id("renewal"))
    assert renewal is not None
    assert abs(renewal.created_at - renewal_opens) < timedelta(hours=1)
    # Each email goes to the roles its template names: the renewal to the sponsor and
    # the champion, the check-ins to every active contact.
    # A copy each.
    invites = sorted(e.to_address for e in acme.emails("renewal_invite"))
    assert invites == sorted([acme.signup.email.lower(), "bo@acme.test"])
    checkins = sorted(e.to_address for e in acme.emails("checkin_report"))
    assert checkins == sorted([acme.signup.email.lower(), "bo@acme.test", "cy@acme.test"] * 3)


async def test_an_import_not_yet_onboarded_opens_the_kickoff_without_a_welcome(
    harness: Harness, acme: Lifecycle
) -> None:
    now = await acme.now()
    account = ImportedAccount(
        term_start=now - timedelta(days=20), term_end=now + timedelta(days=345), onboarded=False
    )
    assert await import_acme(harness, acme, account)
    await acme.advance(hours=1)
    status = await acme.status()
    assert status.phase.value == "onboarding" and not status.onboarded
    assert [t.task_id for t in status.open_tasks] == [acme.task_id("kickoff")]
    assert [e.template for e in acme.emails()] == ["task_assigned"]


# -- the file: checked first, every problem by line and column; imported once ---------------


def csv_file(*rows: str) -> str:
    header = "external_id,company,contacts,plan,owner,term_start,term_end,mrr,onboarded"
    return "\n".join([header, *rows]) + "\n"


def good_rows(today: date) -> list[str]:
    start, end = today - timedelta(days=200), today + timedelta(days=165)
    return [
        f'ACME-1,Acme,"Dana <dana@acme.test> champion; Walt <walt@acme.test> '
        f'executive_sponsor+billing",default,sam@team.test,{start},{end},1200,yes',
        f"GLOBEX-2,Globex,Hank <hank@globex.test>,,,{start},{end},,",
    ]


BAD_ROWS = [
    # line 2: a bad contact and an unknown plan
    "B-1,Bad One,Dana dana@acme.test,nosuch,,2026-01-01,2027-01-01,,",
    # line 3: no company, a date that is not one, a negative MRR, a rep as owner
    "B-2,,Dana <dana@b2.test>,,riley@team.test,2026-13-01,2027-01-01,-5,maybe",
    # line 4: a term already over, a role that is none
    "B-3,Three,Cy <cy@b3.test> cfo,,,2024-01-01,2025-01-01,,",
    # line 5: the same external id as line 2
    "b-1,Again,Di <di@b5.test>,,,2026-01-01,2027-01-01,,",
    # lines 6 and 7: an MRR that is not an amount, and nothing else wrong
    "B-6,Six,Ed <ed@b6.test>,,,2026-01-01,2027-01-01,inf,",
    "B-7,Seven,Flo <flo@b7.test>,,,2026-01-01,2027-01-01,-5,",
]


async def send(api: Api, role: str, text: str, query: str = "") -> httpx.Response:
    headers = {**api.auth(role), "Content-Type": "text/csv"}
    return await api.http.post(f"/customers/import{query}", content=text, headers=headers)


def problems_of(report: dict) -> set[tuple[int, str]]:
    return {(p["line"], p["column"]) for p in report["problems"]}


async def test_the_api_imports_a_file_once_and_a_bad_file_not_at_all(harness: Harness) -> None:
    today = datetime.now(UTC).date()
    async with api_for(harness) as api:
        text = csv_file(*good_rows(today))
        harness.workflow_ids.update({workflow_id_for("acme-1"), workflow_id_for("globex-2")})
        refused = await send(api, "manager", text)
        assert refused.status_code == 403

        dry = await send(api, "admin", text, "?dry_run=true")
        assert dry.status_code == 200, dry.text
        assert dry.json() == {
            "rows": 2, "started": 0, "unchanged": 0, "dry_run": True, "problems": []
        }  # fmt: skip
        with Session(harness.engine) as session:
            assert session.exec(select(Customer)).all() == []

        bad = await send(api, "admin", csv_file(*good_rows(today), *BAD_ROWS))
        assert bad.status_code == 422, bad.text
        assert bad.json()["error"]["code"] == "invalid" and bad.json()["rows"] == 8
        assert problems_of(bad.json()) == {
            (4, "contacts"), (4, "plan"),
            (5, "company"), (5, "term_start"), (5, "mrr"), (5, "onboarded"), (5, "owner"),
            (6, "term_end"), (6, "contacts"),
            (7, "external_id"),
            (8, "mrr"),
            (9, "mrr"),
        }  # fmt: skip
        with Session(harness.engine) as session:
            assert session.exec(select(Customer)).all() == []  # the good rows wait too

        done = await send(api, "admin", text)
        assert done.status_code == 200, done.text
        assert (done.json()["started"], done.json()["unchanged"]) == (2, 0)
        again = await send(api, "admin", text)
        assert (again.json()["started"], again.json()["unchanged"]) == (0, 2)

    with Session(harness.engine) as session:
        acme = session.get(Customer, "acme-1")
        assert acme is not None and acme.owner == "sam@team.test" and acme.onboarded
        # (The shared test server's clock may be ahead of the file's today: the phase
        # may be the renewal already; the renewal's date is the first test's.)
        assert acme.phase in ("adopting", "renewal")
        assert acme.term_start.date() == today - timedelta(days=200)
        roles = {c.email: [r.value for r in c.roles] for c in contacts_of(session, "acme-1")}
        assert roles == {
            "dana@acme.test": ["champion"],
            "walt@acme.test": ["executive_sponsor", "billing"],
        }
        hank = contacts_of(session, "globex-2")
        assert [[r.value for r in c.roles] for c in hank] == [["champion", "admin"]]
        assert (
            session.exec(select(OutboxEmail).where(OutboxEmail.template == "welcome")).all() == []
        )


def test_the_cli_dry_run_lists_every_problem_and_starts_nothing(
    engine: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("TANDEM_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("TANDEM_TEMPORAL_ADDRESS", "127.0.0.1:1")  # nothing listens there
    staff_tokens(engine)
    today = datetime.now(UTC).date()
    good = tmp_path / "accounts.csv"
    good.write_text(csv_file(*good_rows(today)))
    runner = CliRunner()
    checked = runner.invoke(cli_app, ["import", str(good), "--dry-run"])
    assert checked.exit_code == 0, checked.output
    assert "2 account(s), no problems" in checked.output

    bad = tmp_path / "bad.csv"
    bad.write_text(csv_file(*good_rows(today), *BAD_ROWS))
    refused = runner.invoke(cli_app, ["import", str(bad)])
    assert refused.exit_code == 1
    assert "bad.csv: line 5, mrr: '-5' is not an amount of at least 0" in refused.output
    assert "bad.csv: line 7, external_id: also on line 4" in refused.output
    assert "12 problem(s) in bad.csv: nothing was imported" in refused.output
    header = tmp_path / "header.csv"
    header.write_text("external_id,company,seats\nX,Y,3\n")
    wrong = runner.invoke(cli_app, ["import", str(header), "--dry-run"])
    assert wrong.exit_code == 1
    assert "line 1, contacts: missing column" in wrong.output
    assert "line 1, seats: unknown" in wrong.output
    with Session(engine) as session:
        assert session.exec(select(Customer)).all() == []


# -- the file's shape: fields, header, encoding, delimiter, dates, contacts ----------------


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """Records to check rows against (owners): the file's shape is the same on any database."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('records') / 'tandem.db'}")
    upgrade(engine)
    staff_tokens(engine)  # the good rows' owner
    yield engine
    engine.dispose()


def problems_in(records: Engine, text: str) -> list[str]:
    _, problems = check_file(text, records, None, datetime.now(UTC), "accounts.csv")
    return [str(p) for p in problems]


def term(today: date) -> tuple[date, date]:
    return today - timedelta(days=200), today + timedelta(days=165)


def test_a_row_with_more_fields_than_the_header_is_refused(records: Engine) -> None:
    """An unquoted comma shifts the row: said so, rather than dropping the last field."""
    start, end = term(datetime.now(UTC).date())
    shifted = f"S-1,Acme, Inc,Sid <sid@acme.test>,,,{start},{end},100,no"
    text = csv_file(*good_rows(datetime.now(UTC).date()), shifted)
    assert problems_in(records, text) == [
        "line 4, row: 10 fields where the header has 9 (probably an unquoted comma: "
        "put a value holding one in double quotes)"
    ]


def test_headers_are_read_in_any_case_and_padding(records: Engine) -> None:
    rows = good_rows(datetime.now(UTC).date())
    header = " External_ID,Company ,CONTACTS,Plan,Owner,Term_Start,TERM_END,MRR,Onboarded"
    assert problems_in(records, "\n".join([header, *rows]) + "\n") == []
    twice = "external_id,company,Company,contacts,term_start,term_end\n"
    assert problems_in(records, twice) == ["line 1, company: repeated column"]


def test_a_file_that_is_not_utf8_is_refused_naming_the_line() -> None:
    latin1 = csv_file(*good_rows(datetime.now(UTC).date())).replace("Globex", "Glöbex")
    with pytest.raises(ValueError, match=r"^line 3: byte 0xf6 is not UTF-8 .* must be UTF-8"):
        decode(latin1.encode("latin-1"))
    with pytest.raises(ValueError, match="the file is UTF-16, not UTF-8: save it as UTF-8"):
        decode(latin1.encode("utf-16"))
    with pytest.raises(ValueError, match="UTF-16"):
        decode(latin1.encode("utf-16-le"))  # no byte-order mark
    with pytest.raises(ValueError, match=r"a workbook \(.xlsx\), not CSV"):
        decode(b"PK\x03\x04\x14\x00\x06\x00")
    # Excel's "CSV UTF-8" starts with a byte-order mark: read as if it did not.
    assert decode(latin1.encode("utf-8-sig")) == decode(latin1.encode()) == latin1


def test_the_cli_says_which_line_is_not_utf8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_TEMPORAL_ADDRESS", "127.0.0.1:1")  # nothing listens there
    latin1 = tmp_path / "accounts.csv"
    latin1.write_bytes("external_id,company\nA-1,Café\n".encode("latin-1"))
    refused = CliRunner().invoke(cli_app, ["import", str(latin1), "--dry-run"])
    assert refused.exit_code == 1
    assert "line 2: byte 0xe9 is not UTF-8" in refused.output
    assert 'save it as UTF-8 (in Excel: "CSV UTF-8' in refused.output


@pytest.mark.parametrize(("delimiter", "name"), [(";", "semicolons"), ("\t", "tabs")])
def test_a_file_not_separated_by_commas_is_told_so(
    records: Engine, delimiter: str, name: str
) -> None:
    """Not sniffed: the contacts column holds `;` between contacts (account_import.py)."""
    text = csv_file(*good_rows(datetime.now(UTC).date())).replace(",", delimiter)
    assert problems_in(records, text) == [
        f"line 1, header: the columns are separated by {name}: the delimiter must be a comma"
    ]


@pytest.mark.parametrize("day", ["20260101", "2027-W10-1", "2026-1-01", "2026-01-01T00:00"])
def test_a_date_is_yyyy_mm_dd_only(records: Engine, day: str) -> None:
    _, end = term(datetime.now(UTC).date())
    text = csv_file(f"D-1,Dee,Dee <dee@d.test>,,,{day},{end},,")
    assert problems_in(records, text) == [f"line 2, term_start: '{day}' is not a date (YYYY-MM-DD)"]


def test_a_contact_listed_twice_in_a_row_is_refused(records: Engine) -> None:
    start, end = term(datetime.now(UTC).date())
    contacts = '"Dana <dana@acme.test> champion; Walt <walt@acme.test>; D. <DANA@acme.test>"'
    text = csv_file(f"T-1,Twice,{contacts},,,{start},{end},,")
    assert problems_in(records, text) == ["line 2, contacts: dana@acme.test is listed twice"]
