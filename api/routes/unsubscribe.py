"""Unsubscribing, from the signed link in every customer email's footer and its
List-Unsubscribe header (RFC 8058 one-click), and resubscribing by the link that only
the page confirming an opt-out shows. No login: the signed link is the key."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Engine
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep, SettingsDep
from api.routes.public import _message, _pages, _signer
from api.web import TEMPLATES
from db.engine import session_scope
from db.queries import CustomerNotFound
from db.unsubscribe import ContactNotFound, set_contact_unsubscribed, set_unsubscribed
from links import LinkError, ResubscribeClaim, UnsubscribeClaim
from models.contacts import Contact
from models.tables import Customer
from settings import Settings

router = APIRouter(tags=["customer pages"])

# -- unsubscribing ------------------------------------------------------------------------
# From the signed link in every customer email's footer and List-Unsubscribe header. GET
# shows a page and changes nothing: link scanners and previews open links and must not
# unsubscribe anyone. POST records it: the page's button, or a mail program's RFC 8058
# one-click request (body `List-Unsubscribe=One-Click`, no cookies, no page). The signed
# token is the only key, so neither needs a session or a CSRF token. Both are idempotent;
# a forged token changes nothing. The unsubscribe link only ever turns mail off: the page
# that confirms it offers a resubscribe link of its own (links.py says why). A contact's
# link (their copy's) opts out that contact only; a link naming no contact (mail from
# before per-contact copies, an account without contacts) the whole account, as it did.

UNSUBSCRIBE_PAGES = _pages(s400="tampered link", s404="unknown customer")
RESUBSCRIBE_PAGES = _pages(s400="tampered link", s404="unknown customer", s410="expired link")
_NOTHING_CHANGED = (
    "The link may have been changed on the way. Nothing was changed: please use the "
    "link in our latest email, or reply to it with “unsubscribe” in the subject."
)


Claim = UnsubscribeClaim | ResubscribeClaim


def _claim(request: Request, read: Callable[[], Claim]) -> Claim | HTMLResponse:
    """Whom the link is for (the account, and the contact if it names one), or the page
    that refuses it."""
    try:
        return read()
    except LinkError as error:
        if error.reason == "expired":
            message = "Reply to any of our emails and we will send you our emails again."
            return _message(request, 410, str(error), message)
        return _message(request, 400, str(error), _NOTHING_CHANGED)


def _unsubscribe_page(
    request: Request,
    engine: Engine,
    settings: Settings,
    claim: Claim,
    changed: bool,
    may_resubscribe: bool,
) -> HTMLResponse:
    customer_id, contact = claim.customer_id, claim.contact
    with session_scope(engine) as session:
        customer = session.get(Customer, customer_id)
        person = None
        if customer is not None and contact is not None:
            person = session.exec(
                select(Contact).where(Contact.customer_id == customer_id, Contact.email == contact)
            ).first()
    if customer is None or (contact is not None and person is None):
        return _message(request, 404, "We could not find your account.", "Nothing was changed.")
    since = customer.unsubscribed_at if person is None else person.unsubscribed_at
    signer = _signer(settings)
    context = {
        "company": customer.company,
        "email": customer.email if person is None else person.email,
        "unsubscribed": since is not None,
        "since": f"{since.day} {since:%B %Y}" if since else None,
        "changed": changed,
        "unsubscribe_url": urlsplit(signer.unsubscribe_link(customer_id, contact)).path,
        "resubscribe_url": (
            urlsplit(signer.resubscribe_link(customer_id, contact)).path
            if may_resubscribe
            else None
        ),
    }
    return TEMPLATES.TemplateResponse(request, "unsubscribe_page.html", context)


def _set_unsubscribed(
    request: Request, engine: Engine, settings: Settings, claim: Claim, on: bool, via: str
) -> HTMLResponse:
    try:
        if claim.contact is None:
            changed = set_unsubscribed(engine, claim.customer_id, on, via)
        else:
            changed = set_contact_unsubscribed(engine, claim.customer_id, claim.contact, on, via)
    except (CustomerNotFound, ContactNotFound):
        return _message(request, 404, "We could not find your account.", "Nothing was changed.")
    # Whoever just unsubscribed may change their mind; only they get the way back.
    return _unsubscribe_page(request, engine, settings, claim, changed, on and changed)


@router.get("/u/{token}", response_class=HTMLResponse, responses=UNSUBSCRIBE_PAGES)
def unsubscribe_page(
    token: str, request: Request, settings: SettingsDep, engine: EngineDep
) -> HTMLResponse:
    claim = _claim(request, lambda: _signer(settings).read_unsubscribe(token))
    if isinstance(claim, HTMLResponse):
        return claim
    return _unsubscribe_page(request, engine, settings, claim, False, False)


@router.post("/u/{token}", response_class=HTMLResponse, responses=UNSUBSCRIBE_PAGES)
async def unsubscribe(
    token: str, request: Request, settings: SettingsDep, engine: EngineDep
) -> HTMLResponse:
    claim = _claim(request, lambda: _signer(settings).read_unsubscribe(token))
    if isinstance(claim, HTMLResponse):
        return claim
    form: dict[str, Any] = {}
    # Any body, or none, is a request to unsubscribe; the form only says how it came.
    with contextlib.suppress(Exception):
        form = dict(await request.form())
    if form.get("via") == "page":
        via = "unsubscribe page"
    elif form.get("List-Unsubscribe") == "One-Click":
        via = "one-click from their mail program"
    else:
        via = "unsubscribe link"
    return await run_in_threadpool(_set_unsubscribed, request, engine, settings, claim, True, via)


@router.get("/r/{token}", response_class=HTMLResponse, responses=RESUBSCRIBE_PAGES)
def resubscribe_page(
    token: str, request: Request, settings: SettingsDep, engine: EngineDep
) -> HTMLResponse:
    claim = _claim(request, lambda: _signer(settings).read_resubscribe(token))
    if isinstance(claim, HTMLResponse):
        return claim
    return _unsubscribe_page(request, engine, settings, claim, False, True)


@router.post("/r/{token}", response_class=HTMLResponse, responses=RESUBSCRIBE_PAGES)
def resubscribe(
    token: str, request: Request, settings: SettingsDep, engine: EngineDep
) -> HTMLResponse:
    claim = _claim(request, lambda: _signer(settings).read_resubscribe(token))
    if isinstance(claim, HTMLResponse):
        return claim
    return _set_unsubscribed(request, engine, settings, claim, False, "resubscribe link")
