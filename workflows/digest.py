"""Manager digests, on a Temporal Schedule: once a period, each manager gets their
accounts that moved in the quadrant, the at-risk list, overdue and escalated tasks, and
renewals in the next 90 days.

The schedule starts `ManagerDigests` at each period's end; the period is read from the
workflow's own start time on the schedule's grid, so a run retried or resumed after a
worker died covers the same period, and each manager's digest is sent once for it (the
`send_digest` activity keeps it under the key manager + period).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from models.digests import DigestPeriod, DigestReceipt, DigestRequest

SCHEDULE_ID = "tandem-manager-digests"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# 1970-01-01 was a Thursday: this shifts a weekly grid to Mondays.
MONDAY = timedelta(days=4)


class DigestRun(BaseModel):
    every: timedelta
    offset: timedelta = timedelta(0)
    now: bool = False  # `tandem digests send --now`: the period ending this moment


def grid(every: timedelta, at: time) -> tuple[timedelta, timedelta]:
    """The schedule's interval and offset: at `at` (UTC), weekly ones on Mondays."""
    offset = timedelta(hours=at.hour, minutes=at.minute, seconds=at.second)
    if every % timedelta(days=7) == timedelta(0):
        offset += MONDAY
    return every, offset % every


def period_ending(now: datetime, every: timedelta, offset: timedelta) -> DigestPeriod:
    """The latest period on the grid that has ended by `now`."""
    end = EPOCH + offset + ((now - EPOCH - offset) // every) * every
    return DigestPeriod(start=end - every, end=end)


@workflow.defn(name="ManagerDigests")
class ManagerDigests:
    @workflow.run
    async def run(self, request: DigestRun) -> list[DigestReceipt]:
        now = workflow.now()
        if request.now:
            period = DigestPeriod(start=now - request.every, end=now)
        else:
            period = period_ending(now, request.every, request.offset)
        managers: list[str] = await workflow.execute_activity(
            "digest_managers",
            period,
            result_type=list[str],
            start_to_close_timeout=timedelta(minutes=1),
        )
        receipts = []
        for manager in managers:
            receipt: DigestReceipt = await workflow.execute_activity(
                "send_digest",
                DigestRequest(manager=manager, period=period),
                result_type=DigestReceipt,
                start_to_close_timeout=timedelta(minutes=2),
            )
            receipts.append(receipt)
        return receipts


def digest_schedule(every: timedelta, at: time, task_queue: str) -> Schedule:
    interval, offset = grid(every, at)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            "ManagerDigests",
            DigestRun(every=interval, offset=offset),
            id="tandem-manager-digest",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval, offset=offset)]),
        # A digest still being sent when the next is due: skip, never run two at once.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_digest_schedule(
    client: Client, every: timedelta, at: time, task_queue: str
) -> None:
    """Create the schedule, or bring an existing one to these settings: run at every
    worker start and by `tandem digests schedule`, any number of times."""
    schedule = digest_schedule(every, at, task_queue)
    try:
        await client.create_schedule(SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:

        def updated(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(SCHEDULE_ID).update(updated)


async def send_digests_now(
    client: Client, every: timedelta, task_queue: str
) -> list[DigestReceipt]:
    """One digest per manager at once, for the period ending now."""
    workflow_id = f"tandem-manager-digest-now-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    return await client.execute_workflow(
        ManagerDigests.run, DigestRun(every=every, now=True), id=workflow_id, task_queue=task_queue
    )
