"""Tasks: the caller's inbox, and completion through the lifecycle's update (a result
the lifecycle refuses is a 422 with its message, and nothing is written)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.deps import ClientDep, PrincipalDep, SessionDep
from api.errors import ApiError, not_found
from db.queries import task_inbox
from lifecycles import LifecycleError, complete_task
from models.public import TaskPublic
from models.tables import TaskRecord
from models.tasks import TaskCompletion, TaskReceipt

router = APIRouter(prefix="/tasks", tags=["tasks"])


class Completion(BaseModel):
    result: dict[str, Any] = Field(description="the typed result of this task's kind")


def visible_task(session: Session, task_id: str, principal: PrincipalDep) -> TaskPublic:
    row = session.get(TaskRecord, task_id)
    if row is None:
        raise not_found("task", task_id)
    if principal.rep_view is not None and row.assignee != principal.rep_view:
        raise ApiError(403, "forbidden", "a rep sees and completes their own tasks only")
    return TaskPublic.model_validate(row)


def own_task(task_id: str, session: SessionDep, principal: PrincipalDep) -> TaskRecord:
    return visible_task(session, task_id, principal)


OwnTaskDep = Annotated[TaskRecord, Depends(own_task)]


@router.get("", response_model=list[TaskPublic])
def inbox(
    session: SessionDep,
    principal: PrincipalDep,
    status: Annotated[str | None, Query(pattern="^(open|done|cancelled)$")] = "open",
    kind: str | None = None,
    customer: str | None = None,
    overdue: bool | None = None,
) -> list[TaskPublic]:
    tasks = task_inbox(
        session,
        principal.rep_view,
        status=status,
        kind=kind,
        customer_id=customer,
    )
    return [t for t in tasks if overdue is None or t.overdue == overdue]


@router.post("/{task_id}/complete", response_model=TaskReceipt)
async def complete(
    task_id: str,
    completion: Completion,
    _: OwnTaskDep,  # before the client: a task that is not theirs needs no Temporal
    principal: PrincipalDep,
    client: ClientDep,
) -> TaskReceipt:
    request = TaskCompletion(
        task_id=task_id, completed_by=principal.actor, result=completion.result
    )
    try:
        return await complete_task(client, request)
    except LifecycleError as refused:
        raise ApiError(422, "task_refused", str(refused), _field(str(refused))) from None


def _field(message: str) -> str | None:
    head = message.split(":", 1)[0]
    return head if head.startswith("result") else None
