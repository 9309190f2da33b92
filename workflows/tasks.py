"""The task desk: human work inside a lifecycle, with reminders and escalation.

A task is opened with a deterministic id, persisted and announced to its owner (one
activity); a follow-up coroutine per open task reminds the owner
before the due date and escalates to the managers once it is overdue. Completion
arrives through the lifecycle's `complete_task` update.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow

from workflows.effects import Mailroom, record, timeline_entry, wait_for

with workflow.unsafe.imports_passed_through():
    from activities import contracts
    from activities.contracts import Recipient, TaskNotice, TaskUpdate
    from models.lifecycle import LifecycleState
    from models.roles import Role
    from models.tasks import NewTask, Task, TaskKey, TaskStatus


class TaskDesk:
    def __init__(self, state: LifecycleState, mail: Mailroom) -> None:
        self._state = state
        self._mail = mail
        self._followers: dict[str, asyncio.Task[None]] = {}

    def task_id(self, key: str) -> str:
        return str(TaskKey(self._state.customer.customer_id, self._state.term, key))

    async def open(self, new: NewTask) -> Task:
        task_id = self.task_id(new.key)
        if task_id in self._state.tasks:  # a resumed step: the task exists already
            return self._state.tasks[task_id]
        opening = self.draft(new)
        await self._announce(opening)
        task = opening.update.task
        self.follow_up(task)
        return task

    def draft(self, new: NewTask) -> TaskNotice:
        """A new task, held in the lifecycle's state, and what opens it: its record and
        the notice to its owner, for the caller to store (open, or sign-up's one step),
        after which `follow_up` starts its reminders."""
        task_id = self.task_id(new.key)
        now = workflow.now()
        customer = self._state.customer
        task = Task(
            task_id=task_id,
            customer_id=customer.customer_id,
            kind=new.kind,
            title=new.title,
            owner_role=new.owner_role,
            assignee=customer.owner if new.owner_role is Role.manager else None,
            due_at=now + new.due_in,
            created_at=now,
            playbook=new.playbook,
            requires_decision=new.requires_decision,
            email_key=new.email_key,
        )
        self._state.tasks[task_id] = task
        return TaskNotice(
            update=self._update(
                task, "task_opened", f"Task opened for the {new.owner_role.value}: {new.title}"
            ),
            notice=self._mail.request(
                f"{task_id}:assigned",
                "task_assigned",
                customer.customer_id,
                Recipient(new.owner_role.value),
                assignee=task.assignee,
                task_id=task_id,
            ),
        )

    def follow_up(self, task: Task) -> None:
        """Start (or, after continue-as-new, restart) the reminders for an open task."""
        if task.status is TaskStatus.open and task.task_id not in self._followers:
            self._followers[task.task_id] = asyncio.create_task(self._follow_up(task))

    def resume(self) -> None:
        for task in self._state.open_tasks():
            self.follow_up(task)

    async def close(self, task: Task, reason: str) -> None:
        task.status = TaskStatus.cancelled
        await self._save(task, "task_cancelled", f"Task closed ({reason}): {task.title}")

    async def close_all(self, reason: str) -> None:
        for task in self._state.open_tasks():
            await self.close(task, reason)

    async def _follow_up(self, task: Task) -> None:
        plan = self._state.plan.tasks
        customer_id = self._state.customer.customer_id
        if not task.reminded:
            reminder = task.due_at - timedelta(hours=plan.remind_before_hours)
            if await self._closed_before(task, reminder):
                return
            task.reminded = True
            reminder_sent = self._update(task, "task_reminder", f"Reminder sent: {task.title}")
            notice = self._mail.request(
                f"{task.task_id}:reminder",
                "task_reminder",
                customer_id,
                Recipient(task.owner_role.value),
                assignee=task.assignee,
                task_id=task.task_id,
            )
            await self._announce(TaskNotice(update=reminder_sent, notice=notice))
        if not task.escalated:
            # Past its due date is news of its own (webhooks' task.overdue), before the
            # escalation escalate_after_hours later.
            if task.due_at > workflow.now():
                if await self._closed_before(task, task.due_at):
                    return
                await self._save(task, "task_overdue", f"Overdue: {task.title}")
            overdue = task.due_at + timedelta(hours=plan.escalate_after_hours)
            if await self._closed_before(task, overdue):
                return
            task.escalated = True
            escalated = self._update(
                task, "task_escalated", f"Overdue, escalated to managers: {task.title}"
            )
            notice = self._mail.request(
                f"{task.task_id}:escalation",
                "task_escalation",
                customer_id,
                Recipient.manager,
                task_id=task.task_id,
                reason="The task is overdue.",
            )
            await self._announce(TaskNotice(update=escalated, notice=notice))

    @staticmethod
    async def _closed_before(task: Task, deadline: datetime) -> bool:
        return await wait_for(lambda: task.status is not TaskStatus.open, deadline)

    @staticmethod
    def _update(task: Task, kind: str, message: str) -> TaskUpdate:
        key = f"{task.task_id}:{kind}"
        return TaskUpdate(task=task, event=timeline_entry(task.customer_id, key, kind, message))

    async def _save(self, task: Task, kind: str, message: str) -> None:
        await record(contracts.record_task, self._update(task, kind, message))

    async def _announce(self, announcement: TaskNotice) -> None:
        """Store the task's change and tell its owner, in one activity."""
        await self._mail.announce_task(announcement)
