"""`tandem run` and `tandem worker`: the long-running processes, stopped by Ctrl-C or
SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Annotated, Any

import typer

from cli.common import settings

app = typer.Typer(pretty_exceptions_enable=False)


def _until_stopped(main: Coroutine[Any, Any, None]) -> bool:
    """Run `main` until it ends, or until Ctrl-C or SIGTERM (a process manager, `kill`)
    stops it; True when stopped. Either signal cancels the main task, as asyncio.run
    does on Ctrl-C, so each part stops in turn and the Temporal dev server, in its own
    session, is stopped too. SIGTERM gets a handler of its own rather than being passed
    on as SIGINT: a shell script's background job starts with SIGINT ignored, and
    asyncio.run then leaves it ignored, as it should. Only the first SIGTERM cancels:
    `make run` passes its own SIGTERM on to us, and a second cancel would cut the
    stopping parts short (the API's shutdown ended in a traceback)."""

    async def cancelled_on_sigterm() -> None:
        task = asyncio.current_task()
        assert task is not None

        def stop() -> None:
            if not task.cancelling():
                task.cancel()

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop)
        await main

    try:
        asyncio.run(cancelled_on_sigterm())
    except (KeyboardInterrupt, asyncio.CancelledError):
        return True
    return False


@app.command("run")
def run_stack(
    workers: Annotated[
        int,
        typer.Option(
            min=1, help="worker processes: this one and N-1 `tandem worker` processes beside it"
        ),
    ] = 1,
) -> None:
    """Start the embedded stack: Temporal dev server, worker and records (Ctrl-C stops)."""
    from stack import run_embedded

    if _until_stopped(run_embedded(settings(), workers)):
        typer.echo("Stopped. Lifecycles resume where they were on the next `make run`.")


@app.command("worker")
def run_worker() -> None:
    """Run only the worker, against TANDEM_TEMPORAL_ADDRESS."""
    from stack import run_worker as worker_main

    if _until_stopped(worker_main(settings())):
        typer.echo("Worker stopped.")
