"""The success team's dashboard: server-rendered pages on a browser session.

A session is made at /login from an API token and names that token, so revoking the
token ends the session. Every form that changes something carries the session's CSRF
token. Task forms build the kind's result and hand it to the lifecycle, which is the
only judge of it: a refusal comes back with the field path, shown beside that field.
"""

from __future__ import annotations

import math
import secrets
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from api.deps import Principal, SessionDep, get_client, principal_for_session
from api.deps import principal_for_token as token_principal
from api.errors import ApiError
from api.routes.tasks import visible_task
from api.web.pages import EXPIRED, MANAGERS_ONLY, csrf_ok, login_redirect, message, now, page
from api.web.task_forms import field_errors, form_result, task_context
from db import metrics, team_metrics
from db.queries import (
    CustomerFilters,
    CustomerNotFound,
    customer_overview,
    search_customers,
    task_inbox,
)
from lifecycles import LifecycleError, complete_task
from models.contacts import ContactRole
from models.portfolio import Point, PointFilters
from models.public import AssessmentPublic, TaskPublic
from models.roles import Role
from models.tables import Customer
from models.tasks import TaskCompletion

router = APIRouter(include_in_schema=False)
TOO_MANY = ("Too many attempts", "Please wait a minute before trying again.")

PLOT = 190  # the scatter: -1..1 spans 240 ± 190 SVG units, inside a 400-unit plot square
NEUTRAL_BAND = 0.1  # the default plan's; only shades the chart, scoring has its own
CUSTOMERS_PER_PAGE = 50


def _safe_next(target: str | None) -> str:
    # Only a path on this site: "//evil.test" or "https://..." would leave it.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


# -- session -------------------------------------------------------------------------------

_ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" '
    'rx="6" fill="#1a56db"/><path d="M9 10h14M16 10v13" stroke="#fff" stroke-width="4"/></svg>'
)


@router.get("/favicon.ico")
def favicon() -> Response:
    # Browsers ask for it on every site; a 404 would be an error in every page's console.
    return Response(_ICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, session: SessionDep, next: str = "/") -> Response:
    if principal_for_session(request, session) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return page(request, None, "login.html", next=_safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, session: SessionDep) -> Response:
    form = await request.form()
    if not csrf_ok(request, form.get("csrf")):
        return message(request, None, 403, *EXPIRED)
    address = request.client.host if request.client else "unknown"
    if not request.app.state.rate_limits["login"].allow(address):
        return message(request, None, 429, *TOO_MANY)
    target = _safe_next(str(form.get("next", "/")))
    principal = token_principal(session, str(form.get("token", "")).strip())
    if principal is None:
        error = "That token is not valid (or has been revoked)."
        return page(request, None, "login.html", 401, next=target, error=error)
    # A fresh session: nothing from before the login (e.g. a planted id) carries over.
    request.session.clear()
    request.session.update(token_id=principal.token_id, csrf=secrets.token_urlsafe(32))
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    if not csrf_ok(request, form.get("csrf")):
        return message(request, None, 403, *EXPIRED)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


# -- portfolio -----------------------------------------------------------------------------


def _at(value: float, sign: int) -> float:
    """An axis value (-1..1) as an SVG coordinate; sign -1 for y, which grows downward."""
    return round(240 + sign * PLOT * max(-1.0, min(1.0, value)), 1)


def _dots(points: list[Point]) -> list[dict[str, Any]]:
    """Dot area proportional to revenue. Points come most revenue first, so the big dots
    are drawn first and the small ones stay on top, visible and clickable."""
    top = max((p.revenue for p in points), default=0.0) or 1.0
    return [
        {
            "p": p,
            "cx": _at(p.x, 1),
            "cy": _at(p.y, -1),
            "r": round(4 + 10 * math.sqrt(max(p.revenue, 0.0) / top), 1),
            "trail": None
            if p.previous_x is None or p.previous_y is None
            else (_at(p.previous_x, 1), _at(p.previous_y, -1)),
        }
        for p in points
    ]


def _flag(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


@router.get("/", response_class=HTMLResponse)
def portfolio_page(
    request: Request, session: SessionDep, quadrant: str = "", phase: str = "", at_risk: str = ""
) -> Response:
    principal = principal_for_session(request, session)
    if principal is None:
        return login_redirect(request)
    if principal.role is Role.rep:  # a rep's home is their own work
        return RedirectResponse("/app/tasks", status_code=303)
    filters = PointFilters(quadrant=quadrant or None, phase=phase or None, at_risk=_flag(at_risk))
    view = metrics.portfolio(session, filters=filters)
    band = round(PLOT * NEUTRAL_BAND, 1)
    return page(
        request,
        principal,
        "dash_portfolio.html",
        view=view,
        dots=_dots(view.points),
        band=band,
        filters={"quadrant": quadrant, "phase": phase, "at_risk": at_risk},
        quadrants=metrics.QUADRANTS,
        phases=("onboarding", "adopting", "renewal"),
    )


# -- one customer --------------------------------------------------------------------------


def _history_chart(history: list[AssessmentPublic]) -> list[dict[str, Any]]:
    if not history:
        return []
    first, last = history[0].assessed_at, history[-1].assessed_at
    span = (last - first).total_seconds() or 1.0
    return [
        {
            "a": a,
            "x": round(40 + 540 * (a.assessed_at - first).total_seconds() / span, 1)
            if len(history) > 1
            else 310,
            "y": None if a.level is None else round(80 - 70 * a.level, 1),
        }
        for a in history
    ]


@router.get("/app/customers", response_class=HTMLResponse)
def customers_page(
    request: Request,
    session: SessionDep,
    quadrant: str = "",
    phase: str = "",
    owner: str = "",
    rep: str = "",
    at_risk: str = "",
    after: str = "",
) -> Response:
    """Every account, found by filters and paged by id (as GET /customers), so one that
    has no assessment yet (and so no dot on the portfolio) is one click away too."""
    principal = principal_for_session(request, session)
    if principal is None:
        return login_redirect(request)
    filters = {
        "quadrant": quadrant,
        "phase": phase,
        "owner": owner.strip(),
        "rep": rep.strip(),
        "at_risk": at_risk,
    }
    query = CustomerFilters(
        quadrant=quadrant or None,
        phase=phase or None,
        owner=filters["owner"] or None,
        rep=filters["rep"] or None,
        at_risk=_flag(at_risk),
    )
    found = search_customers(
        session, query, after or None, CUSTOMERS_PER_PAGE + 1, principal.rep_view
    )
    shown = found[:CUSTOMERS_PER_PAGE]
    next_page = None
    if len(found) > CUSTOMERS_PER_PAGE:
        kept = {k: v for k, v in filters.items() if v}
        next_page = "/app/customers?" + urlencode(kept | {"after": shown[-1].id})
    return page(
        request,
        principal,
        "dash_customers.html",
        customers=shown,
        filters=filters,
        next_page=next_page,
        page_size=CUSTOMERS_PER_PAGE,
        quadrants=metrics.QUADRANTS,
        phases=("onboarding", "adopting", "renewal", "churned"),
    )


@router.get("/app/customers/{customer_id}", response_class=HTMLResponse)
def customer_page(customer_id: str, request: Request, session: SessionDep) -> Response:
    principal = principal_for_session(request, session)
    if principal is None:
        return login_redirect(request)
    return render_customer(request, session, principal, customer_id)


def render_customer(
    request: Request,
    session: Session,
    principal: Principal,
    customer_id: str,
    status: int = 200,
    **forms: Any,
) -> HTMLResponse:
    """The customer page; `forms` carries a refused contact form back (api.web.contacts)."""
    try:
        view = customer_overview(session, customer_id, rep_view=principal.rep_view)
    except CustomerNotFound:
        return message(request, principal, 404, "No such customer.", "Check the link.")
    tasks = view.open_tasks  # a rep's own only
    chart = _history_chart(view.assessments)
    line = " ".join(f"{c['x']},{c['y']}" for c in chart if c["y"] is not None)
    context = {"view": view, "tasks": tasks, "chart": chart, "line": line, "now": now()}
    context |= {"roles": list(ContactRole), "contact_form": {}, "contact_errors": {}}
    context |= {"changing": None, "change_form": {}, "change_errors": {}} | forms
    return page(request, principal, "dash_customer.html", status, **context)


# -- tasks ---------------------------------------------------------------------------------


@router.get("/app/tasks", response_class=HTMLResponse)
def tasks_page(request: Request, session: SessionDep) -> Response:
    principal = principal_for_session(request, session)
    if principal is None:
        return login_redirect(request)
    tasks = task_inbox(session, principal.rep_view)
    ids = {t.customer_id for t in tasks}
    names = dict(
        session.exec(select(Customer.id, Customer.company).where(col(Customer.id).in_(ids))).all()
    )
    return page(request, principal, "dash_tasks.html", tasks=tasks, names=names, now=now())


def _open_task(
    request: Request, session: Session, task_id: str
) -> tuple[Principal | None, TaskPublic | Response]:
    principal = principal_for_session(request, session)
    if principal is None:
        return None, login_redirect(request)
    try:
        return principal, visible_task(session, task_id, principal)
    except ApiError as error:
        heading = "No such task." if error.body.status == 404 else "Not your task."
        return principal, message(
            request, principal, error.body.status, heading, error.body.message
        )


@router.get("/app/tasks/{task_id}", response_class=HTMLResponse)
def task_page(task_id: str, request: Request, session: SessionDep) -> Response:
    principal, task = _open_task(request, session, task_id)
    if not isinstance(task, TaskPublic):
        return task
    context = task_context(session, task, request.app.state.settings.plans_dir)
    return page(request, principal, "dash_task.html", form={}, errors={}, goal_count=1, **context)


@router.post("/app/tasks/{task_id}", response_class=HTMLResponse)
async def submit_task(task_id: str, request: Request, session: SessionDep) -> Response:
    principal, task = _open_task(request, session, task_id)
    if not isinstance(task, TaskPublic):
        return task
    assert principal is not None
    raw = await request.form()
    if not csrf_ok(request, raw.get("csrf")):
        return message(request, principal, 403, *EXPIRED)
    form = {k: v for k, v in raw.items() if isinstance(v, str) and k != "csrf"}
    try:
        goal_count = max(1, min(20, int(form.get("goal_count", "1"))))
    except ValueError:
        goal_count = 1
    context = task_context(session, task, request.app.state.settings.plans_dir)
    context |= {"form": form, "errors": {}, "goal_count": goal_count}
    if form.get("action") == "add_goal":  # one more empty goal fieldset; nothing is sent
        context |= {"goal_count": min(20, goal_count + 1), "focus_goal": goal_count}
        return page(request, principal, "dash_task.html", **context)
    if task.status != "open":
        return message(request, principal, 409, "This task is closed already.", "")
    result, origin = form_result(task.kind, form, goal_count)
    try:
        client = await get_client(request)
        await complete_task(
            client, TaskCompletion(task_id=task.id, completed_by=principal.actor, result=result)
        )
    except ApiError as error:
        return message(
            request, principal, error.body.status, "Please try again shortly.", error.body.message
        )
    except LifecycleError as refused:
        context["errors"] = field_errors(str(refused), task.kind, origin)
        return page(request, principal, "dash_task.html", 422, **context)
    request.session["notice"] = f"Done: {task.title}."
    return RedirectResponse("/app/tasks", status_code=303)


# -- renewals and team ---------------------------------------------------------------------


def _manager_only(request: Request, session: Session) -> Principal | Response:
    principal = principal_for_session(request, session)
    if principal is None:
        return login_redirect(request)
    if principal.role is Role.rep:
        return message(request, principal, 403, *MANAGERS_ONLY)
    return principal


@router.get("/app/renewals", response_class=HTMLResponse)
def renewals_page(request: Request, session: SessionDep, days: int = 180) -> Response:
    principal = _manager_only(request, session)
    if not isinstance(principal, Principal):
        return principal
    days = max(1, min(days, 730))
    months: dict[str, list[team_metrics.RenewalRow]] = {}
    for row in team_metrics.upcoming_renewals(session, days=days):
        months.setdefault(row.term_end.strftime("%B %Y"), []).append(row)
    return page(request, principal, "dash_renewals.html", months=months, days=days)


@router.get("/app/team", response_class=HTMLResponse)
def team_page(request: Request, session: SessionDep, period_days: int = 90) -> Response:
    principal = _manager_only(request, session)
    if not isinstance(principal, Principal):
        return principal
    period_days = max(1, min(period_days, 730))
    report = team_metrics.team_report(session, period_days=period_days)
    return page(request, principal, "dash_team.html", report=report, period_days=period_days)
