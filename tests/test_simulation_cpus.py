"""Side-by-side simulation runs keep to CPUs of their own (simulation/simulate.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from plans import load_plan
from simulation import simulate
from simulation.simulate import PlanRun, cpu_shares

pinnable = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity"), reason="this OS cannot pin a process to CPUs"
)


@pinnable
@pytest.mark.parametrize(
    ("cpus", "runs", "shares"),
    [
        ({0, 1}, 2, [{0}, {1}]),
        ({0, 1, 2, 3}, 2, [{0, 2}, {1, 3}]),
        ({0, 1, 2}, 2, [{0, 2}, {1}]),
        ({4, 6}, 2, [{4}, {6}]),  # the CPUs this process may use, not 0..n
        ({0}, 2, [{0}, {0}]),  # fewer CPUs than runs: they share them all
        ({0, 1}, 1, [{0, 1}]),
    ],
)
def test_each_run_gets_its_share_of_the_cpus(
    monkeypatch: pytest.MonkeyPatch, cpus: set[int], runs: int, shares: list[set[int]]
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: cpus)
    assert cpu_shares(runs) == shares


def test_where_the_os_cannot_pin_runs_are_left_to_the_scheduler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(os, "sched_setaffinity", raising=False)
    assert cpu_shares(2) == [None, None]


@pinnable
def test_a_run_keeps_to_its_share_of_the_cpus(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}

    async def run_plan(_run: PlanRun, _report: Any) -> dict[str, Any]:
        seen["cpus"] = os.sched_getaffinity(0)
        return {}

    monkeypatch.setattr(simulate, "_run_plan", run_plan)
    mine = os.sched_getaffinity(0)
    share = {min(mine)}
    run = PlanRun(load_plan("default"), 1, 1, 7, "r1", None)
    try:
        simulate._run_alone(0, run, share)
    finally:
        os.sched_setaffinity(0, mine)  # this test's process is the run's here
    assert seen["cpus"] == share
