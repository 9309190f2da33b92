"""`tandem digests`: the managers' digests, on a Temporal Schedule."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from cli.common import client, out, run, settings

app = typer.Typer()
digests = typer.Typer(help="Managers' digests of their book of business.", no_args_is_help=True)
app.add_typer(digests, name="digests")


@digests.command("schedule")
def schedule() -> None:
    """Create or update the digest schedule from the settings (the worker does this too)."""
    from worker import schedule_digests

    config = settings()

    async def work() -> None:
        await schedule_digests(await client(), config)

    run(work())
    at = config.digest_time_of_day.strftime("%H:%M")
    out.print(f"Digests every {config.digest_every_days} day(s) at {at} UTC")


@digests.command("send")
def send(
    now: Annotated[bool, typer.Option("--now", help="send them at once")] = False,
) -> None:
    """Send each manager their digest for the period ending now (needs the worker)."""
    from workflows.digest import send_digests_now

    if not now:
        out.print("Digests go out on their schedule; `--now` sends them at once.")
        raise typer.Exit(0)
    config = settings()
    every = timedelta(days=config.digest_every_days)

    async def work():  # type: ignore[no-untyped-def]
        return await send_digests_now(await client(), every, config.task_queue)

    for receipt in run(work()):
        state = "already sent" if receipt.already_sent else "sent"
        out.print(f"{receipt.manager}: {receipt.accounts} accounts, {state}")
