"""Product-event sources (admins): write keys, shown once at creation; the events still
waiting for their account; and an account's daily usage as the events rolled it up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import AdminDep, EngineDep, ManagerDep, PrincipalDep, SessionDep, SettingsDep
from api.errors import ApiError, not_found
from db.queries import CustomerNotFound, find_customer
from db.sources import create_source, list_sources, revoke_source
from db.usage import account_usage, apply_all_waiting, waiting_accounts
from models.segment import AccountUsage, NewSource, SourceView, WaitingAccount
from plans import event_mapping

router = APIRouter(tags=["product events (Segment)"])


class SourceRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="the sending app or pipeline")


class Applied(BaseModel):
    applied: int = Field(description="waiting events now attributed to their account")


@router.get("/sources", response_model=list[SourceView])
def sources(engine: EngineDep, _: AdminDep) -> list[SourceView]:
    return [SourceView.model_validate(s, from_attributes=True) for s in list_sources(engine)]


@router.post("/sources", response_model=NewSource, status_code=201)
def new_source(request: SourceRequest, engine: EngineDep, admin: AdminDep) -> NewSource:
    row, key = create_source(engine, request.name, admin.actor)
    view = SourceView.model_validate(row, from_attributes=True)
    return NewSource(write_key=key, **view.model_dump())


@router.delete("/sources/{ref}", response_model=SourceView)
def revoke(ref: str, engine: EngineDep, admin: AdminDep) -> SourceView:
    row = revoke_source(engine, ref, admin.actor)
    if row is None:
        raise not_found("source", ref)
    return SourceView.model_validate(row, from_attributes=True)


@router.get("/sources/unattributed", response_model=list[WaitingAccount])
def unattributed(engine: EngineDep, settings: SettingsDep, _: ManagerDep) -> list[WaitingAccount]:
    """Accounts (or users without one) whose events wait; accounts known by now are
    applied first, so what is listed is still unknown."""
    apply_all_waiting(engine, lambda plan: event_mapping(plan, settings.plans_dir))
    return waiting_accounts(engine)


@router.post("/sources/apply", response_model=Applied)
def apply(engine: EngineDep, settings: SettingsDep, _: AdminDep) -> Applied:
    return Applied(
        applied=apply_all_waiting(engine, lambda plan: event_mapping(plan, settings.plans_dir))
    )


@router.get("/customers/{ref}/usage", response_model=AccountUsage)
def usage(
    ref: str,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
    _: PrincipalDep,
    days: Annotated[int, Query(ge=1, le=3650)] = 30,
) -> AccountUsage:
    """The account's daily counts per metric (and `active_users`), newest `days`."""
    try:
        customer = find_customer(session, ref)
    except CustomerNotFound as error:
        raise ApiError(404, "not_found", str(error)) from None
    since = (datetime.now(UTC) - timedelta(days=days)).date()
    return account_usage(
        engine, customer, since, lambda plan: event_mapping(plan, settings.plans_dir)
    )
