"""The HTTP API under uvicorn in a process of its own, as it is deployed: the load comes
from another process over loopback, so client and server never share an event loop."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from bench.common import Process, free_port, say

# As docker-compose.yml starts the API: uvicorn with this many worker processes
# (TANDEM_API_PROCESSES's default; tests/test_compose.py holds the two together).
API_PROCESSES = 2


@contextlib.asynccontextmanager
async def api_process(
    env: dict[str, str], log: Path, processes: int = API_PROCESSES
) -> AsyncIterator[str]:
    """`uvicorn api.main:create_app --factory --workers N`, configured by `env`
    (TANDEM_*), on a free loopback port; yields its base URL and stops it (SIGINT, then
    SIGKILL) afterwards. Warnings only: an access-log line per request would be
    measured too."""
    port = free_port()
    args = [
        sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
        "--workers", str(processes),
    ]  # fmt: skip
    process = Process(args, env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_ready(process, base)
        say(f"api: uvicorn pid {process.pid} on {base}")
        yield base
    finally:
        process.stop()


async def _wait_ready(process: Process, base: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base, timeout=5.0) as http:
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                break
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/openapi.json")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the API did not come up:\n{process.log.read_text()[-3000:]}")
