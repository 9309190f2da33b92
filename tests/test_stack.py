"""The embedded stack's start (`make run`): a dev server that listens before its
frontend is ready is waited for, and any other refusal is reported at once. A worker's
process tunes its garbage collector."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import collector
import stack
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


def _collector_after(code: str, env: dict[str, str] | None = None) -> tuple[list[str], bool]:
    """The collector's thresholds, and whether anything is frozen, after `code` ran in a
    process of its own (the collector's settings are the whole process's)."""
    code += "; import gc; print(*gc.get_threshold()); print(gc.get_freeze_count() > 0)"
    ran = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
    )
    thresholds, frozen = ran.stdout.splitlines()[-2:]
    return thresholds.split(), frozen == "True"


def test_a_worker_process_collects_young_objects_less_often() -> None:
    """What `tandem worker` and `tandem run` do once the worker is built."""
    thresholds, frozen = _collector_after("import collector; collector.tune_collector()")
    assert thresholds == [str(collector.GC_YOUNG_THRESHOLD), "10", "10"]
    assert frozen


def test_the_api_process_collects_young_objects_less_often(tmp_path: Path) -> None:
    """The API's lifespan, which uvicorn runs at start, tunes its process's collector as
    a worker's: a Segment batch is many young dicts and models."""
    code = (
        "import asyncio; from api.main import create_app; app = create_app()\n"
        "async def start():\n"
        "    async with app.router.lifespan_context(app):\n"
        "        pass\n"
        "asyncio.run(start())"
    )
    env = {**os.environ, "TANDEM_VAR_DIR": str(tmp_path)}
    env.pop("TANDEM_DATABASE_URL", None)
    thresholds, frozen = _collector_after(code, env)
    assert thresholds == [str(collector.GC_YOUNG_THRESHOLD), "10", "10"]
    assert frozen
