"""An API client on the test's own event loop (the Temporal client is bound to it),
with the app wired to the harness's worker, records and settings."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import Engine

from api.main import create_app
from api.security import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_webhook
from db.staff import add_staff
from db.tokens import create_token
from tests.conftest import Harness

# The team every API and dashboard test has: one admin, one manager, two reps.
TEAM = {
    "admin": ("Ada", "ada@team.test"),
    "manager": ("Sam", "sam@team.test"),
    "rep": ("Riley", "riley@team.test"),
    "other_rep": ("Robin", "robin@team.test"),
}


def staff_tokens(engine: Engine) -> dict[str, str]:
    """The team on the staff, and a token for each (by their key in TEAM)."""
    tokens = {}
    for key, (name, email) in TEAM.items():
        add_staff(engine, name, email, key.removeprefix("other_"), actor="test")
        tokens[key] = create_token(engine, name, email)[1]
    return tokens


class Api:
    def __init__(self, harness: Harness, http: httpx.AsyncClient) -> None:
        self.h, self.http = harness, http
        self.settings = http._transport.app.state.settings  # type: ignore[attr-defined]
        self.tokens = staff_tokens(harness.engine)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def get(self, path: str, role: str | None = "manager", **kw: Any) -> httpx.Response:
        return await self.http.get(path, headers=self.auth(role) if role else {}, **kw)

    async def post(self, path: str, role: str | None = "manager", **kw: Any) -> httpx.Response:
        return await self.http.post(path, headers=self.auth(role) if role else {}, **kw)

    async def webhook(
        self, payload: dict[str, Any], secret: str | None = None, at: float | None = None
    ) -> httpx.Response:
        body = json.dumps(payload).encode()
        stamp = str(int(at if at is not None else time.time()))
        signature = sign_webhook(secret or self.settings.webhook_secret, stamp, body)
        headers = {
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: signature,
            "Content-Type": "application/json",
        }
        return await self.http.post("/webhooks/signup", content=body, headers=headers)


@asynccontextmanager
async def api_for(harness: Harness, **overrides: Any) -> AsyncIterator[Api]:
    settings = harness.settings.model_copy(
        update={"task_queue": harness.task_queue, "public_url": "http://test", **overrides}
    )
    app = create_app(settings=settings, engine=harness.engine, client=harness.client)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Api(harness, http)
