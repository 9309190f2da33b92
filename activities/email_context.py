"""What an email's template may use: the request's own context, the customer's records
(their success plan with its goals, the latest assessment, the task the email is
about) and signed links. Read inside the transaction that stores the email, so the
email shows the records as stored with it."""

from __future__ import annotations

from email.utils import parseaddr
from typing import Any

from sqlmodel import Session

from activities.contracts import EmailRequest, Recipient
from db.contacts import Addressee, Reachable, active_contacts
from db.queries import PlanAndStanding, Standing, goals_with_progress, latest_recorded_plan
from links import LinkSigner, dashboard_links
from models.contacts import SIGNUP_ROLES
from models.tables import Customer, TaskRecord
from settings import Settings


def build_context(
    session: Session,
    customer: Customer,
    request: EmailRequest,
    settings: Settings,
    account: dict[str, Any] | None = None,
    to: Addressee | None = None,
    written_task: TaskRecord | None = None,
) -> dict[str, Any]:
    """Everything a template may use: the request's own context plus the records.
    `account` is the customer's part (account_context), when already read in this
    transaction for another email of theirs; `to` the copy's contact, greeted by their
    name and given their own links; `written_task` a task this transaction wrote, not read
    back when the email is about it."""
    task = None
    if (task_id := request.context.get("task_id")) is not None:
        written = written_task if written_task and written_task.id == task_id else None
        task = written or session.get(TaskRecord, task_id)
    account = account if account is not None else account_context(session, customer)
    contact = to.address if to is not None and to.contact else None
    if to is not None and to.name:
        account = {**account, "customer": {**account["customer"], "contact_name": to.name}}
    return {
        **request.context,
        **account,
        "links": _links(customer, request, settings, contact),
        "task": None if task is None else {
            "id": task.id, "title": task.title, "kind": task.kind,
            "owner_role": task.owner_role, "assignee": task.assignee,
            "due_at": task.due_at, "escalated": task.escalated,
        },
        "sender": _sender(settings),
    }  # fmt: skip


def account_context(
    session: Session, customer: Customer, new: bool = False, known: PlanAndStanding | None = None
) -> dict[str, Any]:
    """The customer, their success plan with its goals, and the latest assessment.
    A `new` customer, whose row is being created, has neither plan nor assessment yet;
    `known` are the ones this transaction read or wrote already."""
    if new:
        known = PlanAndStanding(None, None)
    elif known is None:
        known = PlanAndStanding(
            latest_recorded_plan(session, customer.id), Standing.held_by(customer)
        )
    plan = None if known.plan is None else known.plan.record
    goals = goals_with_progress(session, known.plan)
    assessment = known.standing
    return {
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
        "goals": [g.model_dump(mode="json") for g in goals],
        "assessment": None if assessment is None else assessment._asdict(),
    }  # fmt: skip


def reachable_contacts(session: Session, customer: Customer, new: bool = False) -> list[Reachable]:
    """Whom customer mail goes to (staff mail needs none of them). A `new` account's
    only contact is the person who signed up, being stored in this same transaction."""
    if not new:
        return active_contacts(session, customer.id)
    roles = [r.value for r in SIGNUP_ROLES]
    return [Reachable(customer.email.strip().lower(), customer.contact_name, roles, False)]


def _links(
    customer: Customer, request: EmailRequest, settings: Settings, contact: str | None
) -> dict[str, Any]:
    """Signed links for customer mail: their success-plan page, unsubscribing, and
    one-click answers for the check-in's survey (one answer per survey and contact: the
    email's key). A contact's copy carries links naming them: their answer and their
    opt-out are theirs alone. Staff mail links to the task and the customer on the
    dashboard."""
    if request.to is not Recipient.customer:
        return dashboard_links(settings.public_url, request.context.get("task_id"))
    signer = LinkSigner(settings.secret_key, settings.public_url)
    links: dict[str, Any] = {
        "plan": signer.plan_link(customer.id),
        "unsubscribe": signer.unsubscribe_link(customer.id, contact),
    }
    if request.template == "checkin_report":
        links["nps"] = signer.survey_links(customer.id, "nps", request.key, contact)
        links["csat"] = signer.survey_links(customer.id, "csat", request.key, contact)
    return links


def _sender(settings: Settings) -> str:
    name, address = parseaddr(settings.mail_from)
    return name or address
