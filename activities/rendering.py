"""Email templates rendered with Jinja: the template names, the filters they use, and a
preview with sample data that needs neither a customer nor a database.

Text and HTML parts come from `email_templates/NAME.txt` and `NAME.html`; the subject is
the text template's `subject` block. HTML is autoescaped, so customer-provided text
(a company called `<script>`) is shown, never run."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel

from links import LinkSigner, dashboard_links
from models.signals import readable

CUSTOMER_TEMPLATES = [
    "welcome", "tutorial_nudge", "checkin_report", "renewal_invite", "farewell",
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


def _qty(value: float | None, unit: str = "") -> str:
    return f"{readable(value)} {unit}" if unit and value is not None else readable(value)


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
    env.filters.update(num=readable, qty=_qty, progress=_progress, day=_day, when=_when)
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


def render_digest(context: dict[str, Any]) -> RenderedEmail:
    """A manager's digest (email_templates/manager_digest.*): staff mail of its own,
    about a whole book of business rather than one customer."""
    env = _environment()
    text_template = env.get_template("manager_digest.txt")
    subject = "".join(text_template.blocks["subject"](text_template.new_context(context)))
    full = {**context, "subject": " ".join(subject.split())}
    text = re.sub(r"\n{3,}", "\n\n", text_template.render(full)).strip() + "\n"
    html = env.get_template("manager_digest.html").render(full)
    return RenderedEmail(subject=full["subject"], text=text, html=html)


def render_footer(customer: dict[str, Any], links: dict[str, Any]) -> tuple[str, str]:
    """The customer mail footer (why they get it, how to stop it) as text and HTML: a
    manager's rewrite of an email replaces its words, not this."""
    env = _environment()
    text = env.get_template("_macros.txt").module.customer_footer(customer, links)  # type: ignore[attr-defined]
    html = env.get_template("_macros.html").module.customer_footer(customer, links)  # type: ignore[attr-defined]
    return str(text).strip() + "\n", str(html).strip()


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
        "welcome": {"tutorials": tutorials, "kickoff_by": (now + timedelta(days=7)).isoformat()},
        "tutorial_nudge": {"tutorials": tutorials[1:]},
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
        "links": _sample_links(template) if template in CUSTOMER_TEMPLATES else dashboard_links(
            "https://tandem.example", "acme:kickoff" if "task_id" in extra else None
        ),
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
