"""What a step of the lifecycle may use of it: the state, the mailroom, the task desk and
a few records. The step modules (onboarding, reviews, renewal) take this rather than the
workflow class, so they read on their own and the lifecycle imports them one way."""

from __future__ import annotations

from typing import Protocol

from temporalio import workflow

from workflows.effects import Mailroom
from workflows.tasks import TaskDesk

with workflow.unsafe.imports_passed_through():
    from activities.contracts import LifecycleSnapshot
    from models.lifecycle import LifecycleState, Phase


class Lifecycle(Protocol):
    state: LifecycleState
    mail: Mailroom
    desk: TaskDesk

    def key(self, local: str) -> str:
        """A key unique to this customer and term, for emails, events and assessments."""
        ...

    def snapshot(self, churn_reason: str | None = None) -> LifecycleSnapshot: ...

    async def save_snapshot(self, churn_reason: str | None = None) -> None: ...

    async def enter(self, phase: Phase) -> None:
        """Move to the phase: its search attribute and the customer's record follow."""
        ...

    def index_search_attributes(self) -> None: ...
