"""The customer page's contact forms: add a contact, change their roles, mark them as
left, set or clear their own opt-out of automated email. Managers and admins only, as
the API's contact routes; every form carries the session's CSRF token.

The rules are db.contacts' (through api.contact_changes, as the API's routes): a
champion marked as left is told to the lifecycle the same way. A refused form is the
customer page again, the message beside the field it names, nothing written."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from api.contact_changes import change_contact
from api.deps import EngineDep, Principal, SessionDep, principal_for_session
from api.web.dashboard import render_customer
from api.web.pages import EXPIRED, csrf_ok, login_redirect, message
from db.contacts import ContactError, add_contact
from db.queries import CustomerNotFound
from db.unsubscribe import ContactNotFound
from models.contacts import ContactChange, ContactStatus, NewContact
from models.roles import Role

router = APIRouter(prefix="/app/customers/{customer_id}/contacts", include_in_schema=False)
NOT_YOURS = ("For managers.", "Only success managers and admins change an account's contacts.")
NO_CONTACT = ("No such contact.", "They may have been removed meanwhile. Reload the page.")
# The change form's buttons, as the change each one makes.
ACTIONS: dict[str, dict[str, Any]] = {
    "left": {"status": ContactStatus.left},
    "opt_out": {"unsubscribed": True},
    "opt_in": {"unsubscribed": False},
}


async def _allowed(request: Request, session: Any) -> tuple[Principal, FormData] | Response:
    """The person may change contacts and the form is this session's; else the page
    that says why (a rep never sees these forms, so their POST is a forged one)."""
    principal = principal_for_session(request, session)
    if principal is None:
        return login_redirect(request)
    form = await request.form()
    if not csrf_ok(request, form.get("csrf")):
        return message(request, principal, 403, *EXPIRED)
    if principal.role is Role.rep:
        return message(request, principal, 403, *NOT_YOURS)
    return principal, form


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _roles(form: FormData) -> list[str]:
    return [r for r in form.getlist("roles") if isinstance(r, str)]


def _invalid(error: ValidationError) -> dict[str, str]:
    """Pydantic's refusal as {field: message}; `roles.0` is the roles field."""
    return {str(e["loc"][0]): e["msg"] for e in error.errors() if e["loc"]}


def _back(request: Request, customer_id: str, notice: str) -> RedirectResponse:
    request.session["notice"] = notice
    url = f"/app/customers/{quote(customer_id, safe='')}#contacts-heading"
    return RedirectResponse(url, status_code=303)


@router.post("", response_class=HTMLResponse)
async def add(
    customer_id: str, request: Request, session: SessionDep, engine: EngineDep
) -> Response:
    allowed = await _allowed(request, session)
    if not isinstance(allowed, tuple):
        return allowed
    principal, form = allowed
    typed = {"name": _text(form, "name"), "email": _text(form, "email"), "roles": _roles(form)}
    try:
        # No role ticked: the API's default (a user).
        new = NewContact.model_validate({k: v for k, v in typed.items() if v})
        added = await run_in_threadpool(
            add_contact, engine, customer_id, new, principal.actor, "dashboard"
        )
    except CustomerNotFound:
        return message(request, principal, 404, "No such customer.", "Check the link.")
    except ValidationError as error:
        errors = _invalid(error)
    except ContactError as error:
        errors = {error.field: str(error).partition(": ")[2]}
    else:
        return _back(request, customer_id, f"Added {added.name} <{added.email}>.")
    forms = {"contact_form": typed, "contact_errors": errors}
    return render_customer(request, session, principal, customer_id, 422, **forms)


@router.post("/change", response_class=HTMLResponse)
async def change(
    customer_id: str, request: Request, session: SessionDep, engine: EngineDep
) -> Response:
    """One contact's form: its buttons save the ticked roles, mark them as left, or set
    or clear their own opt-out."""
    allowed = await _allowed(request, session)
    if not isinstance(allowed, tuple):
        return allowed
    principal, form = allowed
    email, action = _text(form, "email"), _text(form, "action")
    fields = {"roles": _roles(form)} if action == "roles" else ACTIONS.get(action)
    if fields is None:
        return message(request, principal, 400, "Unknown action.", "Reload the page.")
    try:
        wanted = ContactChange.model_validate(fields)
        done = await change_contact(request, engine, customer_id, email, wanted, principal.actor)
    except (CustomerNotFound, ContactNotFound):
        return message(request, principal, 404, *NO_CONTACT)
    except ValidationError as error:
        errors = _invalid(error)
    except ContactError as error:
        errors = {error.field: str(error).partition(": ")[2]}
    else:
        notice = f"Saved: {done.contact.name} <{done.contact.email}>."
        if done.champion_left:  # what became of telling the lifecycle
            told = done.lifecycle == "told"
            notice += " A champion left: " + (
                "the champion-left playbook task opens." if told else f"{done.lifecycle}."
            )
        return _back(request, customer_id, notice)
    forms = {"changing": email, "change_form": {"roles": _roles(form)}, "change_errors": errors}
    return render_customer(request, session, principal, customer_id, 422, **forms)
