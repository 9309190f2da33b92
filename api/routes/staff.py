"""Who owns what: the staff (admins manage it; managers read it) and reassigning an
account or a task (managers and admins). Every change is audited."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import AdminDep, EngineDep, ManagerDep, SessionDep
from api.errors import ApiError, not_found
from db.assignment import reassign_account, reassign_task
from db.queries import CustomerNotFound
from db.staff import StaffError, add_staff, list_staff, set_active
from models.public import TaskPublic
from models.roles import Role
from models.staff import Assignment, StaffPublic

router = APIRouter(tags=["staff"])


class NewStaff(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320, description="how accounts and tasks name them")
    role: Role


class AccountAssignment(BaseModel):
    manager: str | None = Field(default=None, description="the new owning manager's email")
    rep: str | None = Field(default=None, description="the new rep's email, or 'none'")


class TaskAssignment(BaseModel):
    assignee: str = Field(min_length=3, max_length=320, description="the person's email")


def _refused(error: StaffError) -> ApiError:
    return ApiError(422, "invalid", str(error), error.field)


@router.get("/staff", response_model=list[StaffPublic])
def staff(session: SessionDep, _: ManagerDep) -> list[StaffPublic]:
    """Everyone on the staff, with how many open accounts each has."""
    return list_staff(session)


@router.post("/staff", response_model=StaffPublic, status_code=201)
def new_staff(request: NewStaff, engine: EngineDep, admin: AdminDep) -> StaffPublic:
    try:
        return add_staff(engine, request.name, request.email, request.role.value, admin.actor)
    except StaffError as error:
        raise _refused(error) from None


def _set_active(engine: EngineDep, email: str, active: bool, actor: str) -> StaffPublic:
    try:
        return set_active(engine, email, active, actor)
    except StaffError:
        raise not_found("staff member", email) from None


@router.post("/staff/{email}/deactivate", response_model=StaffPublic)
def deactivate(email: str, engine: EngineDep, admin: AdminDep) -> StaffPublic:
    """Their tokens stop at once and new accounts skip them; their accounts stay theirs
    until reassigned."""
    return _set_active(engine, email, False, admin.actor)


@router.post("/staff/{email}/activate", response_model=StaffPublic)
def activate(email: str, engine: EngineDep, admin: AdminDep) -> StaffPublic:
    return _set_active(engine, email, True, admin.actor)


@router.post("/customers/{customer_id}/assignment", response_model=Assignment)
def assign_account(
    customer_id: str, request: AccountAssignment, engine: EngineDep, manager: ManagerDep
) -> Assignment:
    """Give the account a new manager and/or rep (`"rep": "none"` removes the rep); its
    open tasks move with it."""
    try:
        return reassign_account(
            engine, customer_id, manager.actor, manager=request.manager, rep=request.rep
        )
    except CustomerNotFound:
        raise not_found("customer", customer_id) from None
    except StaffError as error:
        raise _refused(error) from None


@router.post("/tasks/{task_id}/assignment", response_model=TaskPublic)
def assign_task(
    task_id: str, request: TaskAssignment, engine: EngineDep, manager: ManagerDep
) -> TaskPublic:
    """Give one open task to a person, e.g. a rep task from the managers' queue."""
    try:
        return TaskPublic.model_validate(
            reassign_task(engine, task_id, request.assignee, manager.actor)
        )
    except StaffError as error:
        raise _refused(error) from None
    except LookupError:
        raise not_found("task", task_id) from None
