"""Email: compose from templates into the outbox, then deliver by SMTP or as .eml files.

Composing and delivering are separate activities so the rendered message is stored under
its idempotency key before any delivery is tried; a retried delivery sends the same
Message-ID again, so a receiving server can drop the duplicate. Customer mail for a
customer who unsubscribed is composed but kept back (activities/suppression.py).
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from functools import lru_cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import escape
from pydantic import BaseModel
from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import EmailReceipt, EmailRequest, EmailRevision, Recipient
from activities.message import build_message, eml_filename
from activities.message import message_id as message_id  # re-exported: tests read it here
from activities.suppression import SUPPRESSED, suppress, unsubscribed
from db.engine import session_scope
from db.queries import goals_with_progress, latest_assessment, latest_plan_record
from links import LinkSigner
from models.tables import Customer, OutboxEmail, TaskRecord
from settings import Settings

CUSTOMER_TEMPLATES = [
    "welcome", "tutorial_invite", "tutorial_nudge", "kickoff_invite",
    "checkin_report", "renewal_invite", "farewell",
]  # fmt: skip
STAFF_TEMPLATES = ["task_assigned", "task_reminder", "task_escalation"]
TEMPLATES: list[str] = CUSTOMER_TEMPLATES + STAFF_TEMPLATES


class UnknownTemplateError(KeyError, ValueError):
    """Both a KeyError and a ValueError, so callers may catch either."""

    def __str__(self) -> str:
        return str(self.args[0])


class RenderedEmail(BaseModel):
    subject: str
    text: str
    html: str


def _num(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _qty(value: float | None, unit: str = "") -> str:
    return f"{_num(value)} {unit}" if unit and value is not None else _num(value)


def _progress(value: float) -> str:
    if value >= 1:
        return f"target reached ({value:.0%})"
    if value < 0:
        return "behind the starting point for now"
    return f"{value:.0%} of the way there"


def _day(value: date | datetime | str) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return f"{value.day} {value:%B %Y}"


def _when(value: datetime) -> str:
    value = value.astimezone(UTC)
    return f"{value:%A} {value.day} {value:%B %Y}, {value:%H:%M} UTC"


@lru_cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(files("email_templates"))),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=_num, qty=_qty, progress=_progress, day=_day, when=_when)
    return env


def render_email(template: str, context: dict[str, Any]) -> RenderedEmail:
    if template not in TEMPLATES:
        raise UnknownTemplateError(
            f"unknown email template {template!r}; valid: {', '.join(TEMPLATES)}"
        )
    env = _environment()
    text_template = env.get_template(f"{template}.txt")
    subject = "".join(text_template.blocks["subject"](text_template.new_context(context)))
    # One line, whatever the data holds: a newline in a header would be header injection.
    subject = " ".join(subject.split())
    full = {**context, "subject": subject}
    text = re.sub(r"\n{3,}", "\n\n", text_template.render(full)).strip() + "\n"
    html = env.get_template(f"{template}.html").render(full)
    return RenderedEmail(subject=subject, text=text, html=html)


def build_context(
    session: Session, customer: Customer, request: EmailRequest, settings: Settings
) -> dict[str, Any]:
    """Everything a template may use: the request's own context plus the records."""
    plan = latest_plan_record(session, customer.id)
    goals = goals_with_progress(session, plan)
    assessment = latest_assessment(session, customer.id)
    task = None
    if "task_id" in request.context:
        task = session.get(TaskRecord, request.context["task_id"])
    return {
        **request.context,
        "customer": {
            "id": customer.id, "company": customer.company,
            "contact_name": customer.contact_name, "email": customer.email,
            "owner": customer.owner,
        },
        "success_plan": None if plan is None else {
            "intended_use": plan.intended_use, "success_definition": plan.success_definition,
            "objectives": list(plan.objectives), "constraints": list(plan.constraints),
            "version": plan.version,
        },
        "goals": [{**g, "target_date": g["target_date"].isoformat()} for g in goals],
        "links": _links(customer, request, settings),
        "assessment": None if assessment is None else {
            "quadrant": assessment.quadrant, "level": assessment.level,
            "customer_score": assessment.customer_score,
            "company_score": assessment.company_score,
            "trend": assessment.trend, "assessed_at": assessment.assessed_at,
        },
        "task": None if task is None else {
            "id": task.id, "title": task.title, "kind": task.kind,
            "owner_role": task.owner_role, "assignee": task.assignee,
            "due_at": task.due_at, "escalated": task.escalated,
        },
        "sender": _sender(settings),
    }  # fmt: skip


def _links(customer: Customer, request: EmailRequest, settings: Settings) -> dict[str, Any]:
    """Signed links for customer mail: their success-plan page, unsubscribing, and
    one-click answers for the check-in's survey (one answer per survey: the email's key)."""
    if request.to is not Recipient.customer:
        return {}
    signer = LinkSigner(settings.secret_key, settings.public_url)
    links: dict[str, Any] = {
        "plan": signer.plan_link(customer.id),
        "unsubscribe": signer.unsubscribe_link(customer.id),
    }
    if request.template == "checkin_report":
        links["nps"] = signer.survey_links(customer.id, "nps", request.key)
        links["csat"] = signer.survey_links(customer.id, "csat", request.key)
    return links


def _sender(settings: Settings) -> str:
    name, address = parseaddr(settings.mail_from)
    return name or address


def _find(session: Session, key: str) -> OutboxEmail | None:
    return session.exec(select(OutboxEmail).where(OutboxEmail.key == key)).first()


def _receipt(row: OutboxEmail) -> EmailReceipt:
    # A suppressed email counts as delivered: there is nothing left to deliver, and the
    # lifecycle then opens no review task for it either.
    done = row.status in ("sent", SUPPRESSED)
    return EmailReceipt(
        key=row.key, subject=row.subject, to_address=row.to_address, already_delivered=done
    )


class EmailActivities:
    """The worker registers both methods; they are sync and run in its thread pool."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings

    def _address(self, request: EmailRequest, customer: Customer) -> str:
        if request.to is Recipient.customer:
            return customer.email
        if request.to is Recipient.rep:
            return request.assignee or self._settings.reps_email
        if request.assignee:
            return request.assignee
        if customer.owner and "@" in customer.owner:
            return customer.owner
        return self._settings.managers_email

    @activity.defn(name="compose_email")
    def compose_email(self, request: EmailRequest) -> EmailReceipt:
        if request.template not in TEMPLATES:
            # The request is fixed in the workflow's history: retrying cannot help.
            message = f"unknown email template {request.template!r}"
            raise ApplicationError(message, type="UnknownTemplate", non_retryable=True)
        with session_scope(self._engine) as session:
            existing = _find(session, request.key)
            if existing is not None:
                # Never re-render: a retry must not change what was already composed.
                return _receipt(existing)
            customer = session.get(Customer, request.customer_id)
            if customer is None:
                # Retryable: the lifecycle's own record of the customer may still be landing.
                raise ApplicationError(
                    f"customer {request.customer_id!r} not found", type="CustomerNotFound"
                )
            rendered = render_email(
                request.template, build_context(session, customer, request, self._settings)
            )
            row = OutboxEmail(
                key=request.key, customer_id=customer.id, template=request.template,
                to_address=self._address(request, customer), subject=rendered.subject,
                text_body=rendered.text, html_body=rendered.html,
                status="held" if request.held else "pending",
            )  # fmt: skip
        try:
            with session_scope(self._engine) as session:
                session.add(row)
                if opted_out := unsubscribed(session, row, row.template in CUSTOMER_TEMPLATES):
                    suppress(session, row, opted_out)
        except IntegrityError:
            # A concurrent attempt stored it first; its row is the one that counts.
            with session_scope(self._engine) as session:
                stored = _find(session, request.key)
            if stored is None:
                raise
            return _receipt(stored)
        return _receipt(row)

    @activity.defn(name="revise_email")
    def revise_email(self, revision: EmailRevision) -> None:
        """A manager's review: drop the email, or replace its words before it goes."""
        with session_scope(self._engine) as session:
            row = _find(session, revision.key)
            if row is None:
                raise ApplicationError(f"no email {revision.key!r}", non_retryable=True)
            if row.status == "sent":
                return
            if revision.drop:
                row.status = "dropped"
            else:
                row.status = "pending"
                if revision.subject:
                    row.subject = " ".join(revision.subject.split())
                if revision.text:
                    row.text_body = revision.text.strip() + "\n"
                    # The manager wrote plain text; the HTML part shows it as written.
                    row.html_body = (
                        '<div style="font-family:sans-serif;white-space:pre-wrap">'
                        f"{escape(revision.text.strip())}</div>"
                    )
            session.add(row)

    @activity.defn(name="deliver_email")
    def deliver_email(self, key: str) -> None:
        with session_scope(self._engine) as session:
            row = _find(session, key)
            if row is None:
                raise ApplicationError(
                    f"no email with key {key!r} in the outbox",
                    type="UnknownEmail",
                    non_retryable=True,
                )
            if row.status in ("sent", SUPPRESSED):
                return
            # Read now, not at compose time: a held email may wait days for its review,
            # and a delivery may be retried for days, while the customer opts out.
            customer_mail = row.template in CUSTOMER_TEMPLATES
            if opted_out := unsubscribed(session, row, customer_mail):
                suppress(session, row, opted_out)
                return
        message = build_message(row, self._settings, customer_mail)
        try:
            via = self._transmit(message, key)
        except smtplib.SMTPRecipientsRefused as error:
            # Permanent: retrying for days would not make the address exist.
            self._record(key, status="failed", last_error=f"recipient refused: {error}"[:2000])
            raise ApplicationError(
                f"recipient refused: {error}", type="RecipientRefused", non_retryable=True
            ) from None
        except OSError as error:  # smtplib.SMTPException and ssl errors are OSErrors too
            self._record(key, last_error=f"{type(error).__name__}: {error}"[:2000])
            raise
        self._record(key, status="sent", delivered_via=via, delivered_at=datetime.now(UTC))

    def _transmit(self, message: EmailMessage, key: str) -> str:
        s = self._settings
        if s.smtp_host:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds) as smtp:
                smtp.ehlo()
                if s.smtp_starttls and smtp.has_extn("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                elif s.smtp_starttls and s.smtp_username:
                    # Never send a password in clear because a relay forgot STARTTLS.
                    raise smtplib.SMTPNotSupportedError(
                        "the SMTP server offers no STARTTLS; refusing to log in without TLS "
                        "(TANDEM_SMTP_STARTTLS=false allows it, for a trusted local relay only)"
                    )
                if s.smtp_username:
                    smtp.login(s.smtp_username, s.smtp_password or "")
                smtp.send_message(message)
            return "smtp"
        s.outbox_dir.mkdir(parents=True, exist_ok=True)
        path = s.outbox_dir / eml_filename(key)
        # Write then rename: a crash mid-write never leaves a half message in the outbox.
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(message.as_bytes())
        os.replace(partial, path)
        return "file"

    def _record(self, key: str, **values: Any) -> None:
        # attempts + 1 in SQL, so two attempts racing each other are both counted.
        with session_scope(self._engine) as session:
            session.exec(
                update(OutboxEmail)
                .where(col(OutboxEmail.key) == key)
                .values(attempts=OutboxEmail.attempts + 1, **values)
            )


def sample_context(template: str) -> dict[str, Any]:
    """Realistic data for `preview`, with the extra context each lifecycle step passes."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    tutorials = [
        {"key": "pipeline", "title": "Build your first sales pipeline",
         "url": "https://help.example.com/tutorials/pipeline"},
        {"key": "reports", "title": "Weekly reports for your managers",
         "url": "https://help.example.com/tutorials/reports"},
    ]  # fmt: skip
    goals = [
        {"key": "active_reps", "metric": "Sales reps active every week", "unit": "reps",
         "baseline": 12.0, "target": 40.0, "direction": "increase",
         "target_date": (now + timedelta(days=120)).date().isoformat(), "current": 26.0,
         "progress": 0.5},
        {"key": "forecast_hours", "metric": "Time to build the monthly forecast", "unit": "h",
         "baseline": 16.0, "target": 4.0, "direction": "decrease",
         "target_date": (now + timedelta(days=90)).date().isoformat(), "current": None,
         "progress": None},
    ]  # fmt: skip
    extras: dict[str, dict[str, Any]] = {
        "welcome": {"tutorials": tutorials},
        "tutorial_invite": {"tutorials": tutorials},
        "tutorial_nudge": {"tutorials": tutorials[1:]},
        "kickoff_invite": {"task_id": "acme:kickoff"},
        "renewal_invite": {"term_end": (now + timedelta(days=60)).date().isoformat()},
        "farewell": {"reason": "budget cut"},
        "task_assigned": {"task_id": "acme:kickoff"},
        "task_reminder": {"task_id": "acme:kickoff"},
        "task_escalation": {"task_id": "acme:kickoff", "reason": "The task is overdue."},
    }
    extra = extras.get(template, {})
    return {
        **extra,
        "customer": {"id": "acme", "company": "Acme Analytics", "contact_name": "Dana Reyes",
                     "email": "dana@acme.example", "owner": "sam@tandem.invalid"},
        "success_plan": {
            "intended_use": "Run the whole sales team's pipeline and forecasting in one place",
            "success_definition": "Every rep works from the pipeline, and the monthly "
            "forecast takes an afternoon instead of two days",
            "objectives": ["Retire the spreadsheet forecast"],
            "constraints": ["Roll out region by region, EMEA first"], "version": 1,
        },
        "goals": goals,
        "links": {} if template not in CUSTOMER_TEMPLATES else _sample_links(template),
        "assessment": {"quadrant": "happy_unprofitable", "level": 0.21, "customer_score": 0.46,
                       "company_score": -0.04, "trend": 0.08,
                       "assessed_at": now - timedelta(days=2)},
        "task": None if "task_id" not in extra else {
            "id": "acme:kickoff", "title": "Kickoff call with Acme Analytics",
            "kind": "kickoff", "owner_role": "manager", "assignee": None,
            "due_at": now + timedelta(days=5), "escalated": template == "task_escalation",
        },
        "sender": "Tandem Success Team",
    }  # fmt: skip


def _sample_links(template: str) -> dict[str, Any]:
    signer = LinkSigner("preview-only", "https://tandem.example")
    links: dict[str, Any] = {
        "plan": signer.plan_link("acme"),
        "unsubscribe": signer.unsubscribe_link("acme"),
    }
    if template == "checkin_report":
        links["nps"] = signer.survey_links("acme", "nps", "acme:t1:check_in-1")
        links["csat"] = signer.survey_links("acme", "csat", "acme:t1:check_in-1")
    return links


def preview(name: str) -> RenderedEmail:
    """Render a template with sample data, to see it without a customer or a database."""
    return render_email(name, sample_context(name))
