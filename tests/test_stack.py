"""The embedded stack's start (`make run`): a dev server that listens before its
frontend is ready is waited for, and any other refusal is reported at once."""

from __future__ import annotations

import pytest

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
