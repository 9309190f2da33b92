"""`tandem signup` (and every command that waits on a lifecycle) against the real dev
server with no worker polling: after WORKER_PATIENCE_SECONDS it says so and exits
non-zero, and a sign-up it reported queued runs once a worker starts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import Session
from temporalio.client import Client, WorkflowExecutionStatus
from typer.testing import CliRunner, Result

import lifecycles
from cli import app
from db.engine import make_engine
from db.migrate import upgrade
from models.customer import workflow_id_for
from models.tables import Customer
from settings import Settings
from tests.fault_support import DevServer, eventually, tandem_env
from worker import build_worker, ensure_search_attributes


@pytest.fixture
async def dev_server(tmp_path: Path) -> AsyncIterator[tuple[DevServer, Client]]:
    server = DevServer(tmp_path / "temporal.db", tmp_path / "server.log")
    try:
        server.start()
        settings = Settings(_env_file=None, temporal_address=server.address)  # type: ignore[call-arg]
        client = await server.ready(settings)
        await ensure_search_attributes(client, "default")
        yield server, client
    finally:
        server.cleanup()


async def tandem(env: dict[str, str], *args: str) -> Result:
    # The CLI runs its own event loop: on a thread of its own, beside the test's. A CLI
    # that waited forever would fail here, not hang the suite.
    invoked = asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)
    return await asyncio.wait_for(invoked, 120)


async def test_signup_without_a_worker_says_so_and_runs_when_one_starts(
    dev_server: tuple[DevServer, Client], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, client = dev_server
    monkeypatch.setattr(lifecycles, "WORKER_PATIENCE_SECONDS", 1.0)
    queue = f"tandem-idle-{uuid.uuid4().hex[:6]}"
    database = f"sqlite:///{tmp_path}/records.db"
    env = tandem_env(server.address, tmp_path / "var", database, queue)

    signed = await tandem(
        env, "signup", "--company", "Initech", "--contact-name", "Peter",
        "--email", "peter@initech.test", "--external-id", "initech",
    )  # fmt: skip
    assert signed.exit_code == 1, signed.output
    assert f"no worker is polling the task queue {queue!r}" in signed.output
    assert "the sign-up is queued and will run when one starts" in signed.output

    # Queued indeed: the lifecycle exists, and a worker that starts now runs it.
    handle = client.get_workflow_handle(workflow_id_for("initech"))
    assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, temporal_address=server.address, task_queue=queue,
        database_url=database, var_dir=tmp_path / "var", sign_up_processes=0,
    )  # fmt: skip
    engine = make_engine(database)
    upgrade(engine)

    def welcomed() -> bool:
        with Session(engine) as session:
            customer = session.get(Customer, "initech")
        return customer is not None

    async with build_worker(client, settings, engine, task_queue=queue):
        await eventually(lambda: asyncio.to_thread(welcomed), 30, lambda: "no customer row")
        # With a worker polling, a command that waits on the lifecycle gets its answer.
        again = await tandem(
            env, "signup", "--company", "Initech", "--contact-name", "Peter",
            "--email", "peter@initech.test", "--external-id", "initech",
        )  # fmt: skip
        assert again.exit_code == 0 and "already signed up" in again.output
        await handle.terminate("test over")
    engine.dispose()


async def test_a_command_on_a_running_lifecycle_without_a_worker_says_so(
    dev_server: tuple[DevServer, Client], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, client = dev_server
    monkeypatch.setattr(lifecycles, "WORKER_PATIENCE_SECONDS", 1.0)
    queue = f"tandem-idle-{uuid.uuid4().hex[:6]}"
    env = tandem_env(server.address, tmp_path / "var", f"sqlite:///{tmp_path}/r.db", queue)
    await tandem(
        env, "signup", "--company", "Hooli", "--contact-name", "Gavin",
        "--email", "gavin@hooli.test", "--external-id", "hooli",
    )  # fmt: skip
    result = tmp_path / "result.json"
    result.write_text("{}")
    done = await tandem(env, "complete", "hooli:t1:kickoff", "--result", str(result))
    assert done.exit_code == 1, done.output
    assert f"no worker is polling the task queue {queue!r}" in done.output
    assert "nothing was done" in done.output
    await client.get_workflow_handle(workflow_id_for("hooli")).terminate("test over")
