"""The baseline of every benchmark: a bare Temporal workflow doing the least a lifecycle
could do. It lives in a module of its own (not `__main__`) so the workflow sandbox can
re-import it.

- Sign-up: started with update-with-start like a lifecycle; the update returns after ONE
  synchronous no-op activity (Tandem's returns once the welcome email is composed).
- Idle: afterwards it sleeps on one long timer, as an idle lifecycle waits for its next step.
- Simulated time: `timers` timers of `timer_days` each (12 monthly timers for a year).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow

BARE_WORKFLOW = "BareLifecycle"


class BareInput(BaseModel):
    timers: int = 1
    timer_days: float = 365.0


@activity.defn(name="bare_noop")
def noop() -> None:
    """Synchronous like Tandem's activities, so it runs on the same kind of thread pool."""


@workflow.defn(name=BARE_WORKFLOW)
class BareLifecycle:
    def __init__(self) -> None:
        self.acknowledged = False

    @workflow.run
    async def run(self, params: BareInput) -> int:
        for _ in range(params.timers):
            await workflow.sleep(timedelta(days=params.timer_days))
        return params.timers

    @workflow.update
    async def acknowledge(self) -> str:
        await workflow.execute_activity(noop, start_to_close_timeout=timedelta(seconds=30))
        self.acknowledged = True
        return workflow.info().workflow_id
