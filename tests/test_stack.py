"""The embedded stack's start (`make run`): a dev server that listens before its
frontend is ready is waited for, and any other refusal is reported at once. A worker's
process tunes its garbage collector."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import stack
import worker
from settings import Settings

# What the Temporal client raised when `tandem run` connected a moment too early.
NOT_READY = (
    "Failed client connect: `get_system_info` call error after connection: Status { code: "
    'Unavailable, message: "Frontend is not healthy yet" }'
)


async def test_connecting_waits_while_the_new_dev_server_is_not_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = 0
    ready = object()

    async def connect(_settings: Settings) -> object:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RuntimeError(NOT_READY)
        return ready

    monkeypatch.setattr(stack, "connect", connect)
    assert await stack._connect_once_ready(Settings()) is ready
    assert calls == 3


async def test_any_other_refusal_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    async def connect(_settings: Settings) -> object:
        nonlocal calls
        calls += 1
        raise RuntimeError("Failed client connect: Status { code: PermissionDenied }")

    monkeypatch.setattr(stack, "connect", connect)
    with pytest.raises(RuntimeError, match="PermissionDenied"):
        await stack._connect_once_ready(Settings())
    assert calls == 1


def test_a_worker_process_collects_young_objects_less_often() -> None:
    """What `tandem worker` and `tandem run` do once the worker is built (in a process of
    its own here: the collector's settings are the whole process's)."""
    code = "import gc, worker; worker.tune_collector(); print(*gc.get_threshold())"
    code += "; print(gc.get_freeze_count() > 0)"
    ran = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    thresholds, frozen = ran.stdout.splitlines()
    assert thresholds.split() == [str(worker.GC_YOUNG_THRESHOLD), "10", "10"]
    assert frozen == "True"
