"""The FastAPI application: `create_app()` wires settings, records and Temporal.

OpenAPI is published at /docs and /openapi.json.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.middleware.sessions import SessionMiddleware
from temporalio.client import Client
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api import errors
from api.routes import (
    contacts,
    customers,
    imports,
    plans,
    portfolio,
    public,
    segment,
    signals,
    sources,
    staff,
    tasks,
    tokens,
    unsubscribe,
    webhook_endpoints,
    webhooks,
)
from api.security import LoopbackOnly, RateLimiter, SecurityHeaders
from api.web import STATIC_DIR, dashboard
from api.web import contacts as contact_forms
from collector import tune_collector
from db.engine import make_engine
from db.migrate import upgrade
from settings import Settings


def create_app(
    settings: Settings | None = None, engine: Engine | None = None, client: Client | None = None
) -> FastAPI:
    settings = settings or Settings()
    settings.refuse_unsafe_production()
    development_secrets = settings.serving_problems("0.0.0.0")
    engine = engine or make_engine(settings.resolved_database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        upgrade(engine)
        # Frozen, what is loaded by now no longer makes each full collection longer (the
        # tails of the reads at 100,000 customers); young objects, a Segment batch's dicts
        # and models among them, are collected less often.
        tune_collector()
        yield

    app = FastAPI(
        title="Tandem",
        version="0.1.0",
        description="Onboarding and success-plan lifecycles for customer-success teams.",
        lifespan=lifespan,
        responses={
            status: {"model": errors.ErrorResponse, "description": description}
            for status, description in errors.DOCUMENTED.items()
        },
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.client = client
    app.state.client_lock = asyncio.Lock()
    # Per client address; the endpoints a stranger can reach without a token.
    app.state.rate_limits = {
        "webhook": RateLimiter(settings.webhook_rate_per_minute, 60),
        "login": RateLimiter(settings.login_rate_per_minute, 60),
    }
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="tandem_session",
        same_site="lax",
        https_only=settings.production,
        max_age=12 * 3600,
    )
    # The last added is the outermost: the client's address is settled first, and the
    # security headers go on every response the app makes.
    app.add_middleware(SecurityHeaders, explorer_paths=(app.docs_url, app.redoc_url))
    if development_secrets:
        app.add_middleware(LoopbackOnly, why="; ".join(development_secrets))
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    errors.install(app)
    for module in (
        webhooks, customers, tasks, signals, plans, tokens, staff, public, portfolio, segment,
        sources, contacts, imports, unsubscribe,
    ):  # fmt: skip
        app.include_router(module.router)
    app.include_router(webhook_endpoints.router)
    app.include_router(contacts.bounces)
    app.include_router(webhook_endpoints.deliveries_router)
    webhook_endpoints.document_events(app)
    app.include_router(dashboard.router)
    app.include_router(contact_forms.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
