"""Existing accounts imported mid-term: the lifecycle picks up from today (no welcome,
onboarding done, past steps skipped) and reaches its renewal conversation on the date
the plan puts it before the term's end (time-skipping server, real worker, records on
SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

import lifecycles
from db.queries import contacts_of
from models.imports import ImportedAccount, ImportedContact
from models.tables import Customer, SignalRecord, TimelineEvent
from models.webhooks import WebhookEvent
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
        ]
        mrr = session.exec(select(SignalRecord.value).where(SignalRecord.kind == "mrr")).all()
        assert mrr == [1200]

    # The renewal conversation opens 90 days before the term's end: 75 days from now.
    renewal_opens = account.term_end - timedelta(days=acme.plan.renewal.lead_days)
    await acme.advance(days=74)
    assert (await acme.status()).phase.value == "adopting"
    # The check-ins from the import on came at their dates (every 30 days from the
    # term's start): days 210, 240 and 270, none of the six before the import.
    keys = sorted(e.key.rsplit(":", 1)[1] for e in acme.emails("checkin_report"))
    assert keys == ["check_in-7", "check_in-8", "check_in-9"]
    await acme.advance(days=2)
    status = await acme.status()
    assert status.phase.value == "renewal"
    renewal = acme.task_row(acme.task_id("renewal"))
    assert renewal is not None
    assert abs(renewal.created_at - renewal_opens) < timedelta(hours=1)
    assert len(acme.emails("renewal_invite")) == 1


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
