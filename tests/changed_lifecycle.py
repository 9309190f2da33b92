"""Edits of today's CustomerLifecycle, for tests/test_replay.py: the same small change
(a pause before the first step), once made carelessly and once behind
`workflow.patched`; and one that reads the machine's clock. A module of its own: the
replay sandbox re-imports the module a workflow is defined in, and this one imports
nothing but the workflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio import workflow

from workflows.lifecycle import CustomerLifecycle

with workflow.unsafe.imports_passed_through():
    from models.lifecycle import LifecycleEnd, LifecycleInput

PAUSE = timedelta(minutes=5)


@workflow.defn(name="CustomerLifecycle")
class UnpatchedChange(CustomerLifecycle):
    """A new timer before everything else: a running lifecycle's history has its first
    activity where this code now starts a timer, so replay must fail."""

    @workflow.run
    async def run(self, lifecycle: LifecycleInput) -> LifecycleEnd:
        await workflow.sleep(PAUSE)
        return await super().run(lifecycle)


@workflow.defn(name="CustomerLifecycle")
class PatchedChange(CustomerLifecycle):
    """The same timer behind a patch: histories recorded before it (no patch marker)
    take the old path, new runs take the new one."""

    @workflow.run
    async def run(self, lifecycle: LifecycleInput) -> LifecycleEnd:
        if workflow.patched("pause-before-the-first-step"):
            await workflow.sleep(PAUSE)
        return await super().run(lifecycle)


@workflow.defn(name="CustomerLifecycle")
class ClockReadingLifecycle(CustomerLifecycle):
    """Reads the machine's clock, which a replay would not see again: the tests' strict
    sandbox must refuse it."""

    @workflow.run
    async def run(self, lifecycle: LifecycleInput) -> LifecycleEnd:
        if datetime.now(UTC).year < 2000:  # never true; the read is what matters
            await workflow.sleep(PAUSE)
        return await super().run(lifecycle)
