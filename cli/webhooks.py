"""`tandem webhooks`: outbound endpoints (Standard Webhooks or Slack) and their deliveries.

The running worker delivers; these commands change the records it reads."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from cli.common import engine, fail, out, settings, when
from db.webhooks import (
    InvalidEndpoint,
    NotFound,
    add_endpoint,
    list_deliveries,
    list_endpoints,
    redeliver,
    rotate_secret,
    send_test,
    set_enabled,
)
from models.delivery import DeliveryStatus
from models.webhooks import EndpointKind, WebhookEndpointIn

app = typer.Typer()
webhooks = typer.Typer(
    help="Outbound webhooks and Slack endpoints: events as they happen.", no_args_is_help=True
)
app.add_typer(webhooks, name="webhooks")


def _split(values: list[str]) -> list[str]:
    """`--events a,b --events c`: every name, in order."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


@webhooks.command("add")
def add(
    url: str,
    events: Annotated[
        list[str], typer.Option(help="event types, comma-separated; default: every type")
    ] = [],  # noqa: B006 (typer reads the default, never mutates it)
    kind: Annotated[EndpointKind, typer.Option(help="webhook or slack")] = EndpointKind.webhook,
    description: Annotated[str, typer.Option()] = "",
) -> None:
    """Add an endpoint; its signing secret is shown once."""
    spec = WebhookEndpointIn(url=url, events=_split(events), kind=kind, description=description)
    try:
        row = add_endpoint(engine(), spec, settings().webhooks_allow_private)
    except InvalidEndpoint as error:
        fail(str(error))
    out.print(f"Endpoint {row.id} ({row.kind}) for {', '.join(row.event_types) or 'every event'}")
    if row.kind == EndpointKind.webhook.value:
        out.print(f"Signing secret (keep it now, it is not shown again): {row.secret}")


@webhooks.command("list")
def list_() -> None:
    """Endpoints, with why any is disabled."""
    table = Table("id", "kind", "url", "events", "state")
    for row in list_endpoints(engine()):
        state = (
            "enabled" if row.enabled else f"disabled {when(row.disabled_at)}: {row.disabled_reason}"
        )
        table.add_row(row.id, row.kind, row.url, ", ".join(row.event_types) or "*", state)
    out.print(table)


@webhooks.command("disable")
def disable(
    endpoint_id: str, reason: Annotated[str, typer.Option()] = "disabled from the CLI"
) -> None:
    """Stop sending to an endpoint; what happens meanwhile is not delivered to it."""
    try:
        set_enabled(engine(), endpoint_id, False, reason)
    except NotFound as error:
        fail(str(error))
    out.print(f"Endpoint {endpoint_id} disabled: {reason}")


@webhooks.command("enable")
def enable(endpoint_id: str) -> None:
    """Enable again (after a 410 or retries that ran out); `redeliver` what it missed."""
    try:
        set_enabled(engine(), endpoint_id, True, "")
    except NotFound as error:
        fail(str(error))
    out.print(f"Endpoint {endpoint_id} enabled")


@webhooks.command("rotate-secret")
def rotate(endpoint_id: str) -> None:
    """A new signing secret; the old one keeps signing too for the overlap."""
    config = settings()
    overlap = timedelta(seconds=config.webhooks_rotation_seconds)
    try:
        row = rotate_secret(engine(), endpoint_id, overlap)
    except NotFound as error:
        fail(str(error))
    out.print(f"New secret (both sign until {when(row.previous_secret_expires_at)}): {row.secret}")


@webhooks.command("test")
def test(
    endpoint_id: str,
    wait: Annotated[float, typer.Option(help="seconds to wait for the outcome")] = 20.0,
) -> None:
    """Send a `webhook.test` event to this endpoint and show how it went."""
    db = engine()
    try:
        event = send_test(db, endpoint_id)
    except (NotFound, InvalidEndpoint) as error:
        fail(str(error))
    out.print(f"Test event {event.id} queued")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        mine = [d for d in list_deliveries(db, endpoint_id, 20) if d.event_id == event.id]
        if mine and mine[0].status is not DeliveryStatus.pending:
            delivery = mine[0]
            out.print(f"{delivery.status.value} after {len(delivery.attempts)} attempt(s)")
            if delivery.status is not DeliveryStatus.delivered:
                fail(delivery.last_error or delivery.status.value)
            return
        time.sleep(0.2)
    fail(
        f"not delivered within {wait:g}s (is the worker running?); see `tandem webhooks deliveries`"
    )


@webhooks.command("deliveries")
def deliveries(
    endpoint_id: Annotated[str | None, typer.Argument()] = None,
    limit: Annotated[int, typer.Option()] = 20,
) -> None:
    """Recent deliveries, newest first, with every attempt."""
    try:
        rows = list_deliveries(engine(), endpoint_id, limit)
    except NotFound as error:
        fail(str(error))
    table = Table("delivery", "event", "type", "endpoint", "status", "attempts")
    for d in rows:
        attempts = "; ".join(
            f"#{a.attempt} {a.status_code or '-'} {a.duration_ms}ms {a.error or ''}".strip()
            for a in d.attempts
        )
        table.add_row(str(d.id), d.event_id, d.event_type, d.endpoint_id, d.status.value, attempts)
    out.print(table)


@webhooks.command("redeliver")
def redeliver_(delivery_id: int) -> None:
    """Send a delivery's event to its endpoint again, with the same webhook-id."""
    try:
        row = redeliver(engine(), delivery_id, settings().public_url)
    except NotFound as error:
        fail(str(error))
    out.print(f"Delivery {row.id}: {row.event_id} again (round {row.round})")
