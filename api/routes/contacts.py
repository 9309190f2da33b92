"""An account's contacts: everyone on the account reads them; managers and admins add,
change (their opt-out of automated email too), mark as left and remove them. Admins
report addresses that bounced. A champion who leaves is told to the lifecycle."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from api.contact_changes import change_contact as change_and_tell
from api.contact_changes import tell_lifecycle
from api.deps import AdminDep, EngineDep, ManagerDep, PrincipalDep, SessionDep
from api.errors import ApiError, not_found
from db.contacts import (
    BounceReport,
    ContactChanged,
    ContactError,
    ContactNotFound,
    add_contact,
    list_contacts,
    mark_bounced,
    remove_contact,
)
from db.queries import CustomerNotFound, find_customer
from models.contacts import Bounces, ContactChange, ContactPublic, NewContact

router = APIRouter(prefix="/customers/{customer_id}/contacts", tags=["contacts"])
bounces = APIRouter(prefix="/contacts", tags=["contacts"])


def _refused(error: ContactError) -> ApiError:
    return ApiError(422, "invalid", str(error), error.field)


@router.get("", response_model=list[ContactPublic])
def contacts(customer_id: str, session: SessionDep, principal: PrincipalDep) -> list[ContactPublic]:
    """The people at the account, active champions first; a rep reads only their own
    accounts' (any other is a 404)."""
    try:
        customer = find_customer(session, customer_id)
        if principal.rep_view is not None and customer.rep != principal.rep_view:
            raise CustomerNotFound(customer_id)
        return list_contacts(session, customer.id)
    except CustomerNotFound:
        raise not_found("customer", customer_id) from None


@router.post("", response_model=ContactPublic, status_code=201)
def new_contact(
    customer_id: str, request: NewContact, engine: EngineDep, manager: ManagerDep
) -> ContactPublic:
    try:
        return add_contact(engine, customer_id, request, manager.actor)
    except CustomerNotFound:
        raise not_found("customer", customer_id) from None
    except ContactError as error:
        raise _refused(error) from None


@router.patch("/{email}", response_model=ContactChanged)
async def change_contact(
    customer_id: str,
    email: str,
    change: ContactChange,
    request: Request,
    engine: EngineDep,
    manager: ManagerDep,
) -> ContactChanged:
    """Change a contact's name, roles or status (`"status": "left"` marks them as gone,
    `"bounced"` as unreachable; `"active"` brings them back), or their own opt-out of
    automated email (`"unsubscribed": true`; `false` opts them back in)."""
    try:
        return await change_and_tell(request, engine, customer_id, email, change, manager.actor)
    except (CustomerNotFound, ContactNotFound):
        raise not_found("contact", f"{customer_id}/{email}") from None
    except ContactError as error:
        raise _refused(error) from None


@router.delete("/{email}", response_model=ContactChanged)
async def delete_contact(
    customer_id: str, email: str, request: Request, engine: EngineDep, manager: ManagerDep
) -> ContactChanged:
    """Take a contact off the account; the audit log and timeline keep who they were."""
    try:
        done = await run_in_threadpool(remove_contact, engine, customer_id, email, manager.actor)
    except (CustomerNotFound, ContactNotFound):
        raise not_found("contact", f"{customer_id}/{email}") from None
    return await tell_lifecycle(request, done)


@bounces.post("/bounces", response_model=BounceReport)
async def report_bounces(
    report: Bounces, request: Request, engine: EngineDep, admin: AdminDep
) -> BounceReport:
    """Addresses that bounced after the relay took the mail (a bounce message, the mail
    provider's bounce webhook): their contacts, at every account, are marked bounced; a
    champion's lifecycle is told and opens the `champion_left` playbook. Reporting an
    address again changes nothing."""
    try:
        done = await run_in_threadpool(mark_bounced, engine, report.emails, admin.actor)
    except ContactError as error:
        raise _refused(error) from None
    for changed in done.bounced:
        await tell_lifecycle(request, changed)
    return done
