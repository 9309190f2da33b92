"""The customer's pages, reached by signed links in their emails: one-click survey
answers, their own success plan, and unsubscribing. No login: the signed link is the key."""

from __future__ import annotations

import contextlib
import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import ClientDep, EngineDep, SessionDep, SettingsDep
from api.web import TEMPLATES
from db.ingest import UnknownContact, already_answered, record_signals
from db.queries import CustomerNotFound, customer_overview
from lifecycles import LifecycleError, edit_success_plan, survey_answered
from links import SCALES, LinkError, LinkSigner, SurveyClaim
from models.public import CustomerDetailPublic
from models.signals import SignalIn, SignalKind, SurveyAnswer
from models.success_plan import CustomerPlanEdit
from settings import Settings

router = APIRouter(tags=["customer pages"])


def _pages(**codes: str) -> dict[int | str, dict[str, Any]]:
    """These routes answer people with HTML pages, errors included."""
    return {
        int(c.removeprefix("s")): {"description": d, "content": {"text/html": {}}}
        for c, d in codes.items()
    }


SURVEY_PAGES = _pages(
    s400="tampered link", s404="unknown customer", s409="already answered", s410="expired link"
)
PLAN_PAGES = _pages(
    s400="tampered link",
    s404="unknown customer",
    s410="expired link",
    s422="the words were refused",
)
_STATUS = {"invalid": 400, "expired": 410}


def _signer(settings: Settings) -> LinkSigner:
    return LinkSigner(settings.secret_key, settings.public_url)


def _message(request: Request, status: int, heading: str, message: str) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
        request,
        "public_message.html",
        {"heading": heading, "message": message},
        status_code=status,
    )


QUESTIONS = {
    "nps": (
        "How likely are you to recommend us to a colleague?",
        "0 = not at all, 10 = extremely",
    ),
    "csat": ("How satisfied are you with us?", "1 = very unsatisfied, 5 = very satisfied"),
}


def _survey_claim(request: Request, token: str, settings: Settings) -> SurveyClaim | HTMLResponse:
    try:
        claim = _signer(settings).read_survey(token, settings.survey_link_days)
    except LinkError as error:
        detail = "Please use the latest email from us." if error.reason == "expired" else ""
        return _message(
            request,
            _STATUS[error.reason],
            str(error),
            detail or "The link may have been changed on the way. Nothing was recorded.",
        )
    if claim.value is not None and claim.value not in SCALES[claim.kind]:
        return _message(request, 400, "This link is not valid.", "Nothing was recorded.")
    return claim


def _number(text: str | None) -> int | None:
    """A person's answer from a form or a link: a bad one gets a page (off the scale),
    not a JSON validation error. No scale goes past two digits."""
    if text is None:
        return None
    return int(text) if text.isascii() and text.isdecimal() and len(text) <= 3 else -1


def _first_choice(claim: SurveyClaim, answer: str | None) -> int | None:
    """The answer the clicked link stood for: beside its token (`?answer=`), or signed
    into it in links made before the scale's links shared one token."""
    return claim.value if claim.value is not None else _number(answer)


def _answer_id(claim: SurveyClaim) -> str:
    """One answer per survey, and per contact when the link names one (each contact's
    copy of the check-in has links of its own): the signal's client id."""
    answer_id = f"survey:{claim.survey}:{claim.kind}"
    if claim.contact is None:
        return answer_id  # as before contacts: one answer for the account
    return f"{answer_id}:{hashlib.sha256(claim.contact.encode()).hexdigest()[:12]}"


# The link in the email opens a page with its answer chosen; only the page's button
# records it. Mail scanners and link previews follow links (GET) but do not press
# buttons, so they answer for no one, and the customer's own click is not then refused.


@router.get("/s/{token}", response_class=HTMLResponse, responses=SURVEY_PAGES)
def survey_page(
    token: str,
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    answer: str | None = None,
) -> HTMLResponse:
    """The answer the customer clicked, chosen, with one button to send it."""
    claim = _survey_claim(request, token, settings)
    if isinstance(claim, HTMLResponse):
        return claim
    chosen = _first_choice(claim, answer)
    if chosen not in SCALES[claim.kind]:
        chosen = None  # an answer mangled on the way: the customer picks on the page
    try:
        answered = already_answered(engine, claim.customer_id, _answer_id(claim))
    except CustomerNotFound:
        return _message(request, 404, "We could not find your account.", "Nothing was recorded.")
    if answered:
        return _message(
            request, 409, "You have already answered this one.", "Thank you: we kept your answer."
        )
    question, legend = QUESTIONS[claim.kind]
    context = {
        "question": question,
        "legend": legend,
        "scale": list(SCALES[claim.kind]),
        "chosen": chosen,
        "action": f"/s/{token}",
    }
    return TEMPLATES.TemplateResponse(request, "survey_page.html", context)


@router.post("/s/{token}", response_class=HTMLResponse, responses=SURVEY_PAGES)
async def answer_survey(
    token: str,
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    client: ClientDep,
    value: Annotated[str | None, Form()] = None,
    answer: str | None = None,
) -> HTMLResponse:
    """Records the answer once (the one on the page: the customer may change it), thanks
    the customer, and tells the lifecycle."""
    claim = _survey_claim(request, token, settings)
    if isinstance(claim, HTMLResponse):
        return claim
    chosen = _first_choice(claim, answer) if value is None else _number(value)
    if chosen is None:
        return _message(request, 400, "No answer was chosen.", "Nothing was recorded.")
    if chosen not in SCALES[claim.kind]:
        return _message(request, 400, "That answer is not on the scale.", "Nothing was recorded.")
    signal = SignalIn(
        customer_id=claim.customer_id,
        kind=SignalKind(claim.kind),
        value=chosen,
        observed_at=datetime.now(UTC),
        source="survey",
        client_id=_answer_id(claim),
        contact=claim.contact,
    )
    try:
        # Dated by this server's clock as it is recorded: it cannot be in the future.
        added = await run_in_threadpool(record_signals, engine, [signal])
    except (CustomerNotFound, UnknownContact):
        return _message(request, 404, "We could not find your account.", "Nothing was recorded.")
    if not added:
        return _message(
            request,
            409,
            "You have already answered this one.",
            "Thank you: we kept your first answer.",
        )
    # The answer is recorded either way; a lifecycle that has ended needs no news.
    with contextlib.suppress(LifecycleError):
        await survey_answered(
            client,
            claim.customer_id,
            SurveyAnswer(
                kind=signal.kind, value=signal.value, survey=claim.survey, contact=claim.contact
            ),
        )
    return _message(
        request,
        200,
        "Thank you!",
        f"We recorded your answer ({chosen}). It helps us help you.",
    )


def _plan_form(view: CustomerDetailPublic) -> dict[str, str]:
    words = view.customer_words or view.success_plan
    if words is None:
        return {"success_definition": "", "intended_use": "", "objectives": "", "constraints": ""}
    return {
        "success_definition": words.success_definition,
        "intended_use": words.intended_use,
        "objectives": "\n".join(words.objectives),
        "constraints": "\n".join(words.constraints),
    }


def _plan_page(
    request: Request,
    view: CustomerDetailPublic,
    form: dict[str, str],
    errors: dict[str, str],
    saved: bool,
    status: int = 200,
) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
        request,
        "plan_page.html",
        {
            "customer": view.customer,
            "goals": view.goals,
            "form": form,
            "errors": errors,
            "saved": saved,
        },
        status_code=status,
    )


@router.get("/p/{token}", response_class=HTMLResponse, responses=PLAN_PAGES)
def plan_page(
    token: str, request: Request, settings: SettingsDep, session: SessionDep, saved: bool = False
) -> HTMLResponse:
    try:
        claim = _signer(settings).read_plan(token, settings.plan_link_days)
        view = customer_overview(session, claim.customer_id)
    except LinkError as error:
        return _message(
            request,
            _STATUS[error.reason],
            str(error),
            "Please use the link in our latest email, or reply to it and we will send a new one.",
        )
    except CustomerNotFound:
        return _message(request, 404, "We could not find your account.", "")
    return _plan_page(request, view, _plan_form(view), {}, saved)


@router.post(
    "/p/{token}",
    response_class=HTMLResponse,
    responses={303: {"description": "saved"}, **PLAN_PAGES},
)
async def save_plan(
    token: str,
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    client: ClientDep,
    success_definition: Annotated[str, Form()] = "",
    intended_use: Annotated[str, Form()] = "",
    objectives: Annotated[str, Form()] = "",
    constraints: Annotated[str, Form()] = "",
) -> Response:
    try:
        claim = _signer(settings).read_plan(token, settings.plan_link_days)
        view = customer_overview(session, claim.customer_id)
    except LinkError as error:
        return _message(request, _STATUS[error.reason], str(error), "Nothing was saved.")
    except CustomerNotFound:
        return _message(request, 404, "We could not find your account.", "Nothing was saved.")
    form = {
        "success_definition": success_definition,
        "intended_use": intended_use,
        "objectives": objectives,
        "constraints": constraints,
    }
    try:
        edit = CustomerPlanEdit(
            success_definition=success_definition,
            intended_use=intended_use,
            objectives=objectives.splitlines(),
            constraints=constraints.splitlines(),
            author=f"customer:{view.customer.email}",
        )
    except ValidationError as error:
        fields = {str(e["loc"][0]) if e["loc"] else "form": e["msg"] for e in error.errors()}
        errors = {k if k in form else "success_definition": v for k, v in fields.items()}
        return _plan_page(request, view, form, errors, False, status=422)
    try:
        await edit_success_plan(client, claim.customer_id, edit)
    except LifecycleError as refused:
        return _plan_page(request, view, form, {"form": str(refused)}, False, status=422)
    # Post/redirect/get: a reload does not submit the form twice.
    return RedirectResponse(f"/p/{token}?saved=true", status_code=303)
