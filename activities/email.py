"""Email: compose from templates into the outbox, then deliver by SMTP or as .eml files.

The rendered message is stored under its idempotency key, and committed, before any
delivery is tried: composing then tries one delivery at once, and `deliver_email`
retries what that could not send. A retried delivery sends the same Message-ID again,
so a receiving server can drop the duplicate. Customer mail for a customer who
unsubscribed is composed but kept back (activities/suppression.py).

Customer mail is one copy per recipient, each its own outbox row under its own key (so
its own Message-ID, and its own record of being sent: a retry never sends a contact the
copy they already got), with links naming its contact. The lifecycle knows only the
step's key; the copies share it as `request_key`. A recipient the relay refuses is a
bounce: their copy fails for good, the contact is marked bounced (a champion's lifecycle
is told), and the other copies still go.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from markupsafe import escape
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import EmailReceipt, EmailRequest, EmailRevision, Recipient
from activities.email_context import account_context, build_context, reachable_contacts
from activities.message import build_message, copy_key, unsubscribe_url
from activities.outbox import copies_of, receipt, record_attempt
from activities.rendering import CUSTOMER_TEMPLATES, TEMPLATES, render_email, render_footer
from activities.smtp import transmit
from activities.suppression import opted_out, suppress
from db.contacts import addressees, mark_bounced
from db.engine import insert_rows, session_scope, write_once
from db.queries import PlanAndStanding
from models.tables import Customer, OutboxEmail, OutboxStatus, TaskRecord
from settings import Settings

# Seconds per blocking SMTP round trip for the attempt made while composing. A delivery
# takes about a dozen (connect, EHLO, STARTTLS and its handshake, EHLO, AUTH, MAIL,
# RCPT, DATA, the message, QUIT): at most ~60 s, inside compose's 2 min start-to-close
# timeout (workflows/effects.py, COMPOSE_TIMEOUT). A relay slower than this is not
# lost: deliver_email retries with the full TANDEM_SMTP_TIMEOUT_SECONDS.
INLINE_SMTP_TIMEOUT = 5.0
# A compose starts no further attempt this long after its first: customer mail is a copy
# per contact, and the attempts together must end inside compose's timeout, however slow
# the relay and many the contacts (the one under way takes at most ~60 s more).
INLINE_BUDGET_SECONDS = 30.0
SIGNATURE_SEPARATOR = "-- \n"  # where the customer footer starts (email_templates/_macros.txt)
# The customers a compose's transaction has read (or written), with their account_context.
_Accounts = dict[str, tuple[Customer, dict[str, Any]]]


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
    # A customer whose row it read: the emails use that row, not a second read (the
    # session holds on only to rows something else refers to, or that it must write).
    customer: Customer | None = None
    # A task whose row it writes: an email about the task shows it without reading it back.
    task: TaskRecord | None = None
    # That customer's plan and standing, as it read or wrote them (a check-in's).
    known: PlanAndStanding | None = None
    # The transaction stored the step's own record (a check-in's assessment) for the
    # first time: an earlier attempt that stored the emails would have stored it too.
    first_attempt: bool = False

    @staticmethod
    def none(_: Session) -> Written:
        """Emails alone: nothing written before them."""
        return Written()


class _LeaveTheRest(Exception):
    """The relay did not take a message, or the attempts took long: leave the rest of
    this compose's emails to deliver_email."""


class EmailActivities:
    """The worker registers the methods marked @activity.defn; they are sync and run in
    its thread pool."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        tell_champion_left: Callable[[str, str], object] | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        # The worker's way to tell a lifecycle its champion's address bounced (a signal,
        # as `tandem contacts` sends); None where no lifecycle listens (unit tests).
        self._tell_champion_left = tell_champion_left

    def _staff_address(
        self, request: EmailRequest, customer: Customer, task: dict[str, Any] | None
    ) -> str:
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

        def transaction(session: Session) -> list[tuple[list[OutboxEmail], bool]]:
            written = write(session)
            new = written.new_customer
            # A customer created now has no earlier attempt's emails: that attempt would
            # have stored the customer in the same transaction.
            keys = [r.key for r in requests if new is None or r.customer_id != new.id]
            earlier = copies_of(session, keys) if keys and not written.first_attempt else {}
            # Read once for all the emails of a customer.
            accounts: _Accounts = {}
            if new is not None:
                accounts[new.id] = new, account_context(session, new, new=True)
            return [
                (earlier[r.key], False)  # never re-render: a retry must not change it
                if r.key in earlier
                else (self._store(session, r, accounts, written), True)
                for r in requests
            ]

        stored = write_once(self._engine, transaction)
        sent: list[str] = []
        started, tried = time.monotonic(), False
        try:
            for rows, new in stored:
                for row in rows if new else ():
                    _alive()  # may raise: Temporal cancels an activity through its heartbeat
                    if row.status != OutboxStatus.pending:
                        continue
                    if tried and time.monotonic() - started > INLINE_BUDGET_SECONDS:
                        raise _LeaveTheRest
                    tried = True
                    outcome = self._deliver_now(row)
                    if outcome is None:
                        # The next attempt would most likely wait as long for the same
                        # relay (and whoever waits on this activity with it):
                        # deliver_email takes it from here.
                        raise _LeaveTheRest
                    row.status = OutboxStatus.sent if outcome else OutboxStatus.failed
                    if outcome:
                        sent.append(row.key)
        except _LeaveTheRest:
            pass
        finally:
            # What went out is recorded sent in one transaction, however the loop ended:
            # only a worker lost before this sends those emails again on retry, as one
            # lost between a send and its record would (with the same Message-IDs).
            self._record_sent(sent)
        return [receipt(r.key, rows) for r, (rows, _) in zip(requests, stored, strict=True)]

    def _store(
        self, session: Session, request: EmailRequest, accounts: _Accounts, written: Written
    ) -> list[OutboxEmail]:
        """Render the email and add it to the outbox, a copy per recipient (it was not
        there: a retry never re-renders, so an email cannot change once stored)."""
        if request.customer_id not in accounts:
            customer = written.customer
            if customer is None or customer.id != request.customer_id:
                customer = session.get(Customer, request.customer_id)
            if customer is None:
                # Retryable: the lifecycle's own record of the customer may still be landing.
                raise ApplicationError(
                    f"customer {request.customer_id!r} not found", type="CustomerNotFound"
                )
            known = written.known if customer is written.customer else None
            accounts[customer.id] = customer, account_context(session, customer, known=known)
        customer, account = accounts[request.customer_id]
        status = OutboxStatus.held if request.held else OutboxStatus.pending
        task = written.task
        if request.to is not Recipient.customer:
            context = build_context(session, customer, request, self._settings, account, None, task)
            rendered = render_email(request.template, context)
            row = OutboxEmail(
                key=request.key, request_key=request.key, customer_id=customer.id,
                template=request.template,
                to_address=self._staff_address(request, customer, context["task"]),
                subject=rendered.subject, text_body=rendered.text, html_body=rendered.html,
                status=status,
            )  # fmt: skip
            self._kept_in_outbox(row)
            insert_rows(session, row)
            return [row]
        new = written.new_customer is not None and written.new_customer.id == customer.id
        contacts = reachable_contacts(session, customer, new)
        copies = addressees(contacts, request.template, customer.email)
        rows = []
        for to in copies:
            context = build_context(session, customer, request, self._settings, account, to, task)
            rendered = render_email(request.template, context)
            row = OutboxEmail(
                key=request.key if len(copies) == 1 else copy_key(request.key, to.address),
                request_key=request.key, contact_email=to.address if to.contact else None,
                customer_id=customer.id, template=request.template, to_address=to.address,
                subject=rendered.subject, text_body=rendered.text, html_body=rendered.html,
                status=status,
            )  # fmt: skip
            customer_mail = row.template in CUSTOMER_TEMPLATES
            if reason := opted_out(session, row, customer_mail, customer, to.opted_out):
                suppress(session, row, reason)
            else:
                self._kept_in_outbox(row)
            insert_rows(session, row)
            rows.append(row)
        return rows

    def _kept_in_outbox(self, row: OutboxEmail) -> None:
        if row.status == OutboxStatus.pending and self._outbox_only():
            # Nowhere to deliver it: the outbox is its destination, stored with it.
            row.status, row.attempts = OutboxStatus.sent, 1
            row.delivered_via, row.delivered_at = "outbox", datetime.now(UTC)

    def _outbox_only(self) -> bool:
        return not self._settings.smtp_host and not self._settings.email_files

    def _deliver_now(self, row: OutboxEmail) -> bool | None:
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
            # True: sent (the caller records it); False: the recipient was refused.
            return self._send(row, timeout, row.template in CUSTOMER_TEMPLATES)
        except Exception as error:  # all of it is deliver_email's to retry and report
            activity.logger.info("email %s not delivered at once, will retry: %s", row.key, error)
            return None

    @activity.defn(name="revise_email")
    def revise_email(self, revision: EmailRevision) -> None:
        """A manager's review: drop the email, or replace its words before it goes."""
        with session_scope(self._engine) as session:
            rows = copies_of(session, [revision.key]).get(revision.key)
            if not rows:
                raise ApplicationError(f"no email {revision.key!r}", non_retryable=True)
            for row in rows:  # every copy: each keeps its own footer
                if row.status in (OutboxStatus.sent, OutboxStatus.suppressed):
                    continue
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
            links = {"unsubscribe": unsubscribe_url(customer.id, self._settings, row.contact_email)}
            text_footer, html_footer = render_footer(customer.model_dump(), links)
            row.text_body += "\n" + text_footer
            row.html_body += "\n" + html_footer

    @activity.defn(name="deliver_email")
    def deliver_email(self, key: str) -> None:
        self._deliver(key, self._settings.smtp_timeout_seconds)

    def _deliver(self, key: str, timeout: float) -> None:
        """Deliver the copies of the step's email not sent yet, each recorded sent as it
        goes: a retry after a failure half-way sends only the rest. A copy whose
        recipient was refused is not tried again (the address bounced)."""
        with session_scope(self._engine) as session:
            rows = copies_of(session, [key]).get(key)
            if not rows:
                raise ApplicationError(
                    f"no email with key {key!r} in the outbox",
                    type="UnknownEmail",
                    non_retryable=True,
                )
            customer_mail = rows[0].template in CUSTOMER_TEMPLATES
            to_send = []
            for row in rows:
                if row.status not in (OutboxStatus.pending, OutboxStatus.held):
                    continue
                # Read now, not at compose time: a held email may wait days for its
                # review, and a delivery may be retried for days, while someone opts out.
                if reason := opted_out(session, row, customer_mail):
                    suppress(session, row, reason)
                else:
                    to_send.append(row)
        for row in to_send:
            _alive()
            if self._send(row, timeout, customer_mail):
                self._record_sent([row.key])
                row.status = OutboxStatus.sent
            else:
                row.status = OutboxStatus.failed
        failed = [r for r in rows if r.status == OutboxStatus.failed]
        if failed and not any(r.status == OutboxStatus.sent for r in rows):
            # Nobody got it, and retrying for days would not make the addresses exist.
            refused = ", ".join(r.to_address for r in failed)
            raise ApplicationError(
                f"recipient refused: {refused}", type="RecipientRefused", non_retryable=True
            )

    def _send(self, row: OutboxEmail, timeout: float, customer_mail: bool) -> bool:
        """Send it: True when sent (the caller records it sent: a worker lost before that
        sends it again on retry, the one window of at-least-once; `store_and_send`
        records its emails together, after all attempts). False when the relay refused
        the recipient: recorded here as a permanent failure, and a contact at that
        address is marked bounced. Any other failure is recorded and raised."""
        key = row.key
        message = build_message(row, self._settings, customer_mail)
        try:
            self._transmit(message, key, timeout)
        except smtplib.SMTPRecipientsRefused as error:
            self._record(
                [key], status=OutboxStatus.failed, last_error=f"recipient refused: {error}"[:2000]
            )
            if customer_mail and row.contact_email:
                self._bounced(row.customer_id, row.contact_email)
            return False
        except OSError as error:  # smtplib.SMTPException and ssl errors are OSErrors too
            self._record([key], last_error=f"{type(error).__name__}: {error}"[:2000])
            raise
        return True

    def _bounced(self, customer_id: str, address: str) -> None:
        """The relay refused a contact's address: they are as good as gone (marked
        bounced, on the timeline). A champion's lifecycle is told, and opens the
        `champion_left` playbook (once, however often this runs)."""
        report = mark_bounced(self._engine, [address], "mail relay", customer_id=customer_id)
        for changed in report.bounced:
            if changed.champion_left and self._tell_champion_left is not None:
                try:
                    self._tell_champion_left(customer_id, changed.contact.email)
                except Exception as error:  # the bounce is recorded; the timeline shows it
                    activity.logger.warning("champion of %s not told: %s", customer_id, error)

    def transmit(self, message: Message, key: str) -> None:
        """Send a message built elsewhere (a manager's digest) the way every email goes:
        by SMTP when configured, else as an .eml file in the outbox."""
        self._transmit(message, key, self._settings.smtp_timeout_seconds)

    def _transmit(self, message: Message, key: str, timeout: float) -> None:
        transmit(self._settings, message, key, timeout, _alive)

    def _record_sent(self, keys: list[str]) -> None:
        if keys:
            via = (
                "smtp" if self._settings.smtp_host else "outbox" if self._outbox_only() else "file"
            )
            self._record(
                keys, status=OutboxStatus.sent, delivered_via=via, delivered_at=datetime.now(UTC)
            )

    def _record(self, keys: list[str], **values: Any) -> None:
        record_attempt(self._engine, keys, **values)
