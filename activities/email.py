"""Email: compose from templates into the outbox, then deliver by SMTP or as .eml files.

The rendered message is stored under its idempotency key, and committed, before any
delivery is tried: composing then tries one delivery at once, and `deliver_email`
retries what that could not send. A retried delivery sends the same Message-ID again,
so a receiving server can drop the duplicate. Customer mail for a customer who
unsubscribed is composed but kept back (activities/suppression.py).
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from markupsafe import escape
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import EmailReceipt, EmailRequest, EmailRevision, Recipient
from activities.email_context import account_context, build_context
from activities.message import build_message, eml_filename, unsubscribe_url
from activities.rendering import CUSTOMER_TEMPLATES, TEMPLATES, render_email, render_footer
from activities.suppression import suppress, unsubscribed
from db.contacts import addresses
from db.engine import session_scope, write_once
from models.tables import Customer, OutboxEmail, OutboxStatus
from settings import Settings


def _find(session: Session, key: str) -> OutboxEmail | None:
    return session.exec(select(OutboxEmail).where(OutboxEmail.key == key)).first()


def _find_all(session: Session, keys: list[str]) -> dict[str, OutboxEmail]:
    rows = session.exec(select(OutboxEmail).where(col(OutboxEmail.key).in_(keys)))
    return {row.key: row for row in rows}


def _receipt(row: OutboxEmail) -> EmailReceipt:
    # A suppressed email counts as delivered: there is nothing left to deliver, and the
    # lifecycle then opens no review task for it either.
    done = row.status in (OutboxStatus.sent, OutboxStatus.suppressed)
    return EmailReceipt(
        key=row.key, subject=row.subject, to_address=row.to_address, already_delivered=done
    )


# Seconds per blocking SMTP round trip for the attempt made while composing. A delivery
# takes about a dozen (connect, EHLO, STARTTLS and its handshake, EHLO, AUTH, MAIL,
# RCPT, DATA, the message, QUIT): at most ~60 s, inside compose's 2 min start-to-close
# timeout (workflows/effects.py, COMPOSE_TIMEOUT). A relay slower than this is not
# lost: deliver_email retries with the full TANDEM_SMTP_TIMEOUT_SECONDS.
INLINE_SMTP_TIMEOUT = 5.0
SIGNATURE_SEPARATOR = "-- \n"  # where the customer footer starts (email_templates/_macros.txt)


def _alive() -> None:
    """Heartbeat between the steps of a compose: its heartbeat timeout, not its long
    start-to-close timeout, is what notices a lost worker. Only when the caller set
    one: no one listens otherwise (a local activity has its workflow task's timeout
    instead; a unit test calls the method directly)."""
    if activity.in_activity() and activity.info().heartbeat_timeout:
        activity.heartbeat()


@dataclass(frozen=True)
class Written:
    """What the caller's records, written in the emails' transaction, tell it."""

    # A customer whose row this transaction creates: nothing else of theirs is stored
    # yet, so there is nothing to look up.
    new_customer: Customer | None = None

    @staticmethod
    def none(_: Session) -> Written:
        """Emails alone: nothing written before them."""
        return Written()


class EmailActivities:
    """The worker registers the methods marked @activity.defn; they are sync and run in
    its thread pool."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings

    def _address(
        self,
        contacts: list[tuple[str, list[str]]],
        request: EmailRequest,
        customer: Customer,
        task: dict[str, Any] | None,
    ) -> str:
        if request.to is Recipient.customer:
            return addresses(contacts, request.template, customer.email)
        # Mail to a task's owner goes to the person it is assigned to in the records (the
        # lifecycle does not know of reassignments); a rep task with no rep is in the
        # managers' queue, so its mail goes to the account's manager.
        about_own_task = task is not None and task["owner_role"] == request.to.value
        person = task["assignee"] if about_own_task and task else request.assignee
        if person and "@" in person:
            return person
        if customer.owner and "@" in customer.owner:
            return customer.owner
        return self._settings.managers_email

    @activity.defn(name="compose_email")
    def compose_email(self, request: EmailRequest) -> EmailReceipt:
        [receipt] = self.store_and_send([request])
        return receipt

    def store_and_send(
        self, requests: list[EmailRequest], write: Callable[[Session], Written] = Written.none
    ) -> list[EmailReceipt]:
        """One transaction: what the caller's `write` records (activities/accounts.py:
        an account opened, a task changed), then each email, rendered from it (so an
        email shows the task stored with it) or found as an earlier attempt stored it;
        then one delivery attempt of each email stored now. A concurrent
        attempt that stored first makes this one's transaction fail on a unique key: it
        is run again and finds the winner's rows. SQLite takes its write lock only at
        the first INSERT, so the reads before it hold nothing up."""
        for request in requests:
            if request.template not in TEMPLATES:
                # The request is fixed in the workflow's history: retrying cannot help.
                message = f"unknown email template {request.template!r}"
                raise ApplicationError(message, type="UnknownTemplate", non_retryable=True)
        _alive()

        def transaction(session: Session) -> list[tuple[OutboxEmail, bool]]:
            written = write(session)
            new = written.new_customer
            # A customer created now has no earlier attempt's emails: that attempt would
            # have stored the customer in the same transaction.
            keys = [r.key for r in requests if new is None or r.customer_id != new.id]
            earlier = _find_all(session, keys) if keys else {}
            # Read once for all the emails of a customer.
            accounts: dict[str, dict[str, Any]] = {}
            if new is not None:
                accounts[new.id] = account_context(session, new, new=True)
            return [
                (earlier[r.key], False)  # never re-render: a retry must not change it
                if r.key in earlier
                else (self._store(session, r, accounts), True)
                for r in requests
            ]

        stored = write_once(self._engine, transaction)
        sent: list[str] = []
        try:
            for row, new in stored:
                _alive()  # may raise: Temporal cancels an activity through its heartbeat
                if not (new and row.status == OutboxStatus.pending):
                    continue
                if not self._deliver_now(row):
                    # The next attempt would most likely wait as long for the same relay
                    # (and whoever waits on this activity with it): deliver_email takes
                    # it from here.
                    break
                row.status = OutboxStatus.sent
                sent.append(row.key)
        finally:
            # What went out is recorded sent in one transaction, however the loop ended:
            # only a worker lost before this sends those emails again on retry, as one
            # lost between a send and its record would (with the same Message-IDs).
            self._record_sent(sent)
        return [_receipt(row) for row, _ in stored]

    def _store(
        self, session: Session, request: EmailRequest, accounts: dict[str, dict[str, Any]]
    ) -> OutboxEmail:
        """Render the email and add it to the outbox (it was not there: a retry never
        re-renders, so an email cannot change once stored)."""
        customer = session.get(Customer, request.customer_id)
        if customer is None:
            # Retryable: the lifecycle's own record of the customer may still be landing.
            raise ApplicationError(
                f"customer {request.customer_id!r} not found", type="CustomerNotFound"
            )
        if customer.id not in accounts:
            accounts[customer.id] = account_context(session, customer)
        context = build_context(session, customer, request, self._settings, accounts[customer.id])
        rendered = render_email(request.template, context)
        row = OutboxEmail(
            key=request.key, customer_id=customer.id, template=request.template,
            to_address=self._address(
                accounts[customer.id]["contacts"], request, customer, context["task"]
            ),
            subject=rendered.subject,
            text_body=rendered.text, html_body=rendered.html,
            status=OutboxStatus.held if request.held else OutboxStatus.pending,
        )  # fmt: skip
        session.add(row)
        if opted_out := unsubscribed(session, row, row.template in CUSTOMER_TEMPLATES):
            suppress(session, row, opted_out)
        elif row.status == OutboxStatus.pending and self._outbox_only():
            # Nowhere to deliver it: the outbox is its destination, stored with it.
            row.status, row.attempts = OutboxStatus.sent, 1
            row.delivered_via, row.delivered_at = "outbox", datetime.now(UTC)
        return row

    def _outbox_only(self) -> bool:
        return not self._settings.smtp_host and not self._settings.email_files

    def _deliver_now(self, row: OutboxEmail) -> bool:
        """A first delivery attempt straight after the email is stored: most mail goes
        here, without a deliver_email activity (and its workflow task) of its own. The
        row was stored and checked against opt-outs a moment ago, in compose's own
        transaction, so it is sent as it stands. Any failure leaves the email pending
        for deliver_email, which retries for days. The attempt waits at most
        INLINE_SMTP_TIMEOUT per SMTP round trip, so it ends well inside compose's own
        timeout: a compose retried while its first attempt is still sending would find
        the email pending and send it again."""
        timeout = min(INLINE_SMTP_TIMEOUT, self._settings.smtp_timeout_seconds)
        try:
            self._send(row, timeout, row.template in CUSTOMER_TEMPLATES)
        except Exception as error:  # all of it is deliver_email's to retry and report
            activity.logger.info("email %s not delivered at once, will retry: %s", row.key, error)
            return False
        return True  # the caller records it sent

    @activity.defn(name="revise_email")
    def revise_email(self, revision: EmailRevision) -> None:
        """A manager's review: drop the email, or replace its words before it goes."""
        with session_scope(self._engine) as session:
            row = _find(session, revision.key)
            if row is None:
                raise ApplicationError(f"no email {revision.key!r}", non_retryable=True)
            if row.status == OutboxStatus.sent:
                return
            if revision.drop:
                row.status = OutboxStatus.dropped
            else:
                row.status = OutboxStatus.pending
                if revision.subject:
                    row.subject = " ".join(revision.subject.split())
                if revision.text:
                    # The review page shows the email with its footer: a manager who
                    # edits that copy sends their words, and the footer once.
                    words = revision.text.split(f"\n{SIGNATURE_SEPARATOR}")[0].strip()
                    self._rewrite(session, row, words)
            session.add(row)

    def _rewrite(self, session: Session, row: OutboxEmail, text: str) -> None:
        # The manager wrote plain text; the HTML part shows it as written. Customer mail
        # keeps its footer: the unsubscribe link must not depend on who wrote the words.
        row.text_body = text + "\n"
        row.html_body = (
            f'<div style="font-family:sans-serif;white-space:pre-wrap">{escape(text)}</div>'
        )
        if row.template not in CUSTOMER_TEMPLATES:
            return
        customer = session.get(Customer, row.customer_id)
        if customer is not None:
            links = {"unsubscribe": unsubscribe_url(customer.id, self._settings)}
            text_footer, html_footer = render_footer(customer.model_dump(), links)
            row.text_body += "\n" + text_footer
            row.html_body += "\n" + html_footer

    @activity.defn(name="deliver_email")
    def deliver_email(self, key: str) -> None:
        self._deliver(key, self._settings.smtp_timeout_seconds)

    def _deliver(self, key: str, timeout: float) -> None:
        with session_scope(self._engine) as session:
            row = _find(session, key)
            if row is None:
                raise ApplicationError(
                    f"no email with key {key!r} in the outbox",
                    type="UnknownEmail",
                    non_retryable=True,
                )
            if row.status in (OutboxStatus.sent, OutboxStatus.suppressed):
                return
            # Read now, not at compose time: a held email may wait days for its review,
            # and a delivery may be retried for days, while the customer opts out.
            customer_mail = row.template in CUSTOMER_TEMPLATES
            if opted_out := unsubscribed(session, row, customer_mail):
                suppress(session, row, opted_out)
                return
        self._send(row, timeout, customer_mail)
        self._record_sent([key])

    def _send(self, row: OutboxEmail, timeout: float, customer_mail: bool) -> None:
        """Send it, or record the failure and raise. The caller records it sent (a worker
        lost before that sends it again on retry: the one window of at-least-once);
        `store_and_send` records its emails together, after all attempts."""
        key = row.key
        message = build_message(row, self._settings, customer_mail)
        try:
            self._transmit(message, key, timeout)
        except smtplib.SMTPRecipientsRefused as error:
            # Permanent: retrying for days would not make the address exist.
            self._record(
                [key], status=OutboxStatus.failed, last_error=f"recipient refused: {error}"[:2000]
            )
            raise ApplicationError(
                f"recipient refused: {error}", type="RecipientRefused", non_retryable=True
            ) from None
        except OSError as error:  # smtplib.SMTPException and ssl errors are OSErrors too
            self._record([key], last_error=f"{type(error).__name__}: {error}"[:2000])
            raise

    def transmit(self, message: Message, key: str) -> None:
        """Send a message built elsewhere (a manager's digest) the way every email goes:
        by SMTP when configured, else as an .eml file in the outbox."""
        self._transmit(message, key, self._settings.smtp_timeout_seconds)

    def _transmit(self, message: Message, key: str, timeout: float) -> None:
        s = self._settings
        if s.smtp_host:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=timeout)
            try:
                _alive()
                smtp.ehlo()
                secure = s.smtp_starttls and smtp.has_extn("starttls")
                if secure:
                    # The server's certificate is verified (and its name), against the
                    # system's CAs or TANDEM_SMTP_TLS_CA.
                    context = ssl.create_default_context(cafile=s.smtp_tls_ca)
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if s.smtp_username and not secure:
                    # Never send a password in clear: a relay that forgot STARTTLS, or a
                    # setting that turned it off, would show it to the network.
                    why = (
                        "the SMTP server offers no STARTTLS"
                        if s.smtp_starttls
                        else "TANDEM_SMTP_STARTTLS is false"
                    )
                    raise smtplib.SMTPNotSupportedError(
                        f"{why}; refusing to send the SMTP password without TLS"
                    )
                _alive()
                if s.smtp_username:
                    smtp.login(s.smtp_username, s.smtp_password or "")
                smtp.send_message(message)
            except BaseException:
                smtp.close()
                raise
            # Sent: a QUIT that fails or times out must not make it count as unsent.
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()
            return
        if self._outbox_only():  # a held email, released: the outbox row is all there is
            return
        s.outbox_dir.mkdir(parents=True, exist_ok=True)
        path = s.outbox_dir / eml_filename(key)
        # Write then rename: a crash mid-write never leaves a half message in the outbox.
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(message.as_bytes())
        os.replace(partial, path)

    def _record_sent(self, keys: list[str]) -> None:
        if keys:
            via = (
                "smtp" if self._settings.smtp_host else "outbox" if self._outbox_only() else "file"
            )
            self._record(
                keys, status=OutboxStatus.sent, delivered_via=via, delivered_at=datetime.now(UTC)
            )

    def _record(self, keys: list[str], **values: Any) -> None:
        # attempts + 1 in SQL, so two attempts racing each other are both counted. One
        # statement needs no ORM session around it.
        with self._engine.begin() as connection:
            connection.execute(
                update(OutboxEmail)
                .where(col(OutboxEmail.key).in_(keys))
                .values(attempts=OutboxEmail.attempts + 1, **values)
            )
