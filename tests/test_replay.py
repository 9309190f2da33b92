"""Replay: a change to the workflow code that would break running lifecycles fails here.

`tests/histories/` keeps histories of a first term, each replayed against today's code.
Until Tandem is released there is one, re-recorded after a change to the workflow:
`TANDEM_RECORD_HISTORIES=first-term .venv/bin/python -m pytest tests/test_replay.py -k
todays`. After release a change goes behind `workflow.patched`, and the new path's
history is recorded beside the old one under a new name (docs/design.md, "Changing a
workflow safely").
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, WorkflowRunner

from settings import Settings
from tests.changed_lifecycle import ClockReadingLifecycle, PatchedChange, UnpatchedChange
from tests.conftest import Lifecycle
from tests.test_lifecycle import GOOD, UNHAPPY_BUT_PROFITABLE, kickoff_result
from worker import STRICT_SANDBOX, UNSANDBOXED, workflow_runner
from workflows.lifecycle import CustomerLifecycle

HISTORIES = Path(__file__).parent / "histories"


def replayer(
    lifecycle: type = CustomerLifecycle, runner: WorkflowRunner = STRICT_SANDBOX
) -> Replayer:
    return Replayer(
        workflows=[lifecycle], data_converter=pydantic_data_converter, workflow_runner=runner
    )


async def a_year_of(acme: Lifecycle) -> WorkflowHistory:
    """Every kind of step, task, event and update once; returns the first term's history."""
    await acme.sign_up()
    await acme.sign_up()
    await acme.advance(hours=1)
    first_run = (await acme.handle().describe()).run_id
    await acme.signals(**GOOD)
    await acme.handle().signal(CustomerLifecycle.tutorial_completed, "first-steps")
    await acme.advance(days=10)  # the kickoff is late: reminder, then escalation
    await acme.complete(acme.task_id("kickoff"), kickoff_result())
    await acme.advance(days=100)
    await acme.signals(**UNHAPPY_BUT_PROFITABLE)
    await acme.advance(days=170)
    await acme.complete(
        acme.task_id("renewal_checkpoint-180d"),
        {"kind": "renewal_checkpoint", "manager_rating": "happy_unprofitable"},
    )
    await acme.complete(
        acme.task_id("renewal"), {"kind": "renewal", "outcome": "expanded", "reason": "More seats"}
    )
    await acme.advance(days=100)
    assert (await acme.status()).term == 2
    handle = acme.h.client.get_workflow_handle(acme.handle().id, run_id=first_run)
    return await handle.fetch_history()


async def test_todays_history_replays(acme: Lifecycle) -> None:
    history = await a_year_of(acme)
    await replayer().replay_workflow(history)
    if name := os.environ.get("TANDEM_RECORD_HISTORIES"):
        HISTORIES.mkdir(exist_ok=True)
        (HISTORIES / f"{name}.json").write_text(history.to_json())


@pytest.mark.parametrize("runner", [STRICT_SANDBOX, UNSANDBOXED], ids=["sandbox", "production"])
@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_recorded_histories_replay(path: Path, runner: WorkflowRunner) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await replayer(runner=runner).replay_workflow(history)


# -- the check itself is checked: a change that would break running lifecycles fails ----

RECORDED = HISTORIES / "first-term.json"


async def test_a_change_without_a_patch_is_caught() -> None:
    """One timer added before the first step, no patch: the recorded history's first
    command is an activity, the code's is now a timer. Replay refuses it."""
    history = WorkflowHistory.from_json(RECORDED.stem, RECORDED.read_text())
    with pytest.raises(workflow.NondeterminismError, match=r"(?i)nondeterminism"):
        await replayer(UnpatchedChange).replay_workflow(history)


async def test_the_same_change_behind_a_patch_replays() -> None:
    history = WorkflowHistory.from_json(RECORDED.stem, RECORDED.read_text())
    result = await replayer(PatchedChange).replay_workflow(history)
    assert result.replay_failure is None


# -- the sandbox the tests run lifecycles in ----------------------------------------


def test_workflow_tests_run_in_the_strict_sandbox(settings: Settings) -> None:
    """The settings every in-process workflow test builds its worker with."""
    assert workflow_runner(settings) is STRICT_SANDBOX
    assert workflow_runner(Settings(_env_file=None)) is UNSANDBOXED  # type: ignore[call-arg]


def test_the_tests_sandbox_checks_all_of_our_workflow_code() -> None:
    """Production runs lifecycles unsandboxed (worker.py says why); the tests' strict
    sandbox is the guard, and a module passed through it would escape its checks."""
    passed_through = STRICT_SANDBOX.restrictions.passthrough_modules
    ours = {p.stem for p in (Path(__file__).parent.parent / "workflows").glob("*.py")}
    assert "lifecycle" in ours
    assert not {f"workflows.{name}" for name in ours} & passed_through
    assert "workflows" not in passed_through


async def test_a_clock_read_in_workflow_code_fails_in_the_tests_sandbox() -> None:
    history = WorkflowHistory.from_json(RECORDED.stem, RECORDED.read_text())
    result = await replayer(ClockReadingLifecycle).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert "RestrictedWorkflowAccessError" in repr(result.replay_failure)
