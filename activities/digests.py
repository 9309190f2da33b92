"""The digest activities: who gets a digest, and one manager's digest, sent once.

A digest is rendered and stored under its key (manager + period) before it is sent, and
marked sent after: a retry finds it sent and stops, or finds it stored and sends the
same message again (same Message-ID), never a second, different digest.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import select
from temporalio import activity

from activities.email import EmailActivities
from activities.message import build_message
from activities.rendering import render_digest
from db.digests import digest_content, digest_key, manager_books
from db.engine import insert_once, session_scope
from models.digest_records import ManagerDigest
from models.digests import DigestPeriod, DigestReceipt, DigestRequest
from models.tables import OutboxEmail
from settings import Settings


class DigestActivities:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.mail = EmailActivities(engine, settings)

    @activity.defn(name="digest_managers")
    def digest_managers(self, period: DigestPeriod) -> list[str]:
        with session_scope(self.engine) as session:
            return sorted(manager_books(session, self.settings.managers_email))

    @activity.defn(name="send_digest")
    def send_digest(self, request: DigestRequest) -> DigestReceipt:
        key = digest_key(request.manager, request.period.end)
        with session_scope(self.engine) as session:
            books = manager_books(session, self.settings.managers_email)
            accounts = books.get(request.manager, [])
            stored = session.exec(select(ManagerDigest).where(ManagerDigest.key == key)).first()
            if stored is None:
                content = digest_content(
                    session, accounts, request.period, self.settings.public_url
                )
                rendered = render_digest({**content, "period": request.period})
                insert_once(
                    session,
                    ManagerDigest,
                    {
                        "key": key,
                        "manager": request.manager,
                        "period_start": request.period.start,
                        "period_end": request.period.end,
                        "subject": rendered.subject,
                        "text_body": rendered.text,
                        "html_body": rendered.html,
                        "status": "pending",
                        "created_at": datetime.now(UTC),
                    },
                )
        with session_scope(self.engine) as session:
            row = session.exec(select(ManagerDigest).where(ManagerDigest.key == key)).one()
            receipt = DigestReceipt(
                manager=request.manager,
                key=key,
                accounts=len(accounts),
                already_sent=row.status == "sent",
            )
            if receipt.already_sent:
                return receipt
            letter = OutboxEmail(
                key=key,
                customer_id="",
                template="manager_digest",
                to_address=row.manager,
                subject=row.subject,
                text_body=row.text_body,
                html_body=row.html_body,
                created_at=row.created_at,
            )
        self.mail.transmit(build_message(letter, self.settings, customer_mail=False), key)
        with session_scope(self.engine) as session:
            row = session.exec(select(ManagerDigest).where(ManagerDigest.key == key)).one()
            row.status, row.sent_at = "sent", datetime.now(UTC)
            session.add(row)
        return receipt
