"""`tandem worker` deployed beside its Temporal cluster often starts first (compose, a
process manager): it waits for the server to answer instead of exiting."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.fault_support import DevServer, WorkerProcess, tandem_env, wait_until


@pytest.mark.slow
def test_a_worker_started_before_its_server_waits_and_then_polls(tmp_path: Path) -> None:
    server = DevServer(tmp_path / "temporal.db", tmp_path / "server.log")
    env = tandem_env(
        server.address,
        tmp_path / "var",
        f"sqlite:///{tmp_path / 'tandem.db'}",
        f"tandem-early-{uuid.uuid4().hex[:6]}",
    )
    worker = WorkerProcess(env, tmp_path / "worker.log", cwd=tmp_path)
    try:
        worker.launch()
        logs(worker, "not answering yet", 60, "the worker saying it waits")
        assert "Connection refused" in worker.log()  # and why
        server.start()
        logs(worker, "Worker polling", 150, "the worker polling once the server is up")
    finally:
        worker.cleanup()
        server.cleanup()


def logs(worker: WorkerProcess, text: str, timeout: float, what: str) -> None:
    """Wait until the running worker's log says `text`."""
    wait_until(
        lambda: text in worker.log() or not worker.running,
        timeout,
        lambda: f"{what}:\n{worker.log()}",
    )
    assert worker.running, f"the worker exited:\n{worker.log()}"
