"""What every dashboard page shares: the session's CSRF token, the page frame (who is
logged in, a notice carried over a redirect), the message page and the login redirect.
Apart from the routes so that each group of pages (api.web.dashboard, api.web.contacts)
is its own module."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import Principal
from api.security import same_secret
from api.web import TEMPLATES
from models.roles import Role

EXPIRED = ("This form has expired.", "Nothing was saved. Reload the page and try again.")
MANAGERS_ONLY = ("For managers.", "This page is for success managers and admins.")


def now() -> datetime:
    return datetime.now(UTC)


def csrf(request: Request) -> str:
    if "csrf" not in request.session:
        request.session["csrf"] = secrets.token_urlsafe(32)
    return request.session["csrf"]


def csrf_ok(request: Request, sent: Any) -> bool:
    expected = request.session.get("csrf")
    return bool(expected) and same_secret(expected, sent)


def page(
    request: Request, principal: Principal | None, name: str, status: int = 200, **context: Any
) -> HTMLResponse:
    context |= {
        "principal": principal,
        "manager": principal is not None and principal.role is not Role.rep,
        "csrf": csrf(request),
        "notice": request.session.pop("notice", None),
        "path": request.url.path,
    }
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status)


def message(
    request: Request, principal: Principal | None, status: int, heading: str, text: str
) -> HTMLResponse:
    return page(request, principal, "dash_message.html", status, heading=heading, message=text)


def login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(request.url.path, safe='/:')}", status_code=303)
