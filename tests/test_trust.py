"""The doors a stranger could try: secrets compared safely, headers on every page, a
rate limit that neither forgets too soon nor remembers forever, and development secrets
that never leave this machine."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from api.main import create_app
from api.security import SIGNATURE_HEADER, TIMESTAMP_HEADER, RateLimiter, verify_webhook
from db.staff import add_staff
from db.tokens import create_token
from settings import DEV_SECRET, InsecureSettings, Settings
from stack import serving_api
from tests.api_support import Api, api_for
from tests.browser_support import serve
from tests.conftest import Harness

STRONG = {"secret_key": "s" * 40, "webhook_secret": "w" * 40}


@pytest.fixture
async def api(harness: Harness) -> AsyncIterator[Api]:
    async with api_for(harness) as api:
        yield api


def app_on(engine: Engine, **values: object) -> FastAPI:
    settings = Settings(_env_file=None, **values)  # type: ignore[arg-type]
    return create_app(settings=settings, engine=engine)


# -- non-ASCII where a secret is compared ------------------------------------------------


def test_a_non_ascii_signature_is_a_bad_signature_not_an_error() -> None:
    stamp = str(int(time.time()))
    assert verify_webhook("k", stamp, "sha256=é", b"{}", 300) == "bad signature"
    arabic_indic = "\u0661\u0667" + "\u0660" * 8  # digits that int() reads too
    assert verify_webhook("k", arabic_indic, "sha256=x", b"{}", 300) is not None


async def test_non_ascii_in_the_signature_headers_is_a_401(api: Api) -> None:
    stamp = str(int(time.time())).encode()
    for headers in (
        {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: "sha256=é".encode()},
        {TIMESTAMP_HEADER: "\uff11\uff17".encode(), SIGNATURE_HEADER: b"sha256=00"},
    ):
        response = await api.http.post("/webhooks/signup", content=b"{}", headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "bad_signature"


async def test_non_ascii_in_a_csrf_field_is_refused_not_an_error(engine: Engine) -> None:
    transport = httpx.ASGITransport(app=app_on(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        await http.get("/login")  # a session with a CSRF token
        response = await http.post("/login", data={"csrf": "é", "token": "x"})
    assert response.status_code == 403


# -- security headers ---------------------------------------------------------------------


async def test_every_page_carries_the_security_headers(engine: Engine) -> None:
    transport = httpx.ASGITransport(app=app_on(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        for path in ("/login", "/", "/customers", "/s/forged", "/u/forged", "/nowhere", "/docs"):
            response = await http.get(path)
            policy = response.headers.get("content-security-policy", "")
            assert "frame-ancestors 'none'" in policy, path
            assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0], path
            assert response.headers["referrer-policy"] == "no-referrer", path
            assert response.headers["x-content-type-options"] == "nosniff", path
        page = (await http.get("/login")).headers["content-security-policy"]
    assert "script-src 'self'" in page and "style-src 'self';" in page


# -- the rate limiter ---------------------------------------------------------------------


def test_the_rate_limiter_forgets_idle_clients() -> None:
    limiter = RateLimiter(limit=2, window=60)
    for n in range(1000):
        assert limiter.allow(f"10.0.{n // 256}.{n % 256}", now=n * 0.001)
    assert len(limiter) == 1000
    assert limiter.allow("10.9.9.9", now=120)  # a minute later, the others are idle
    assert len(limiter) == 1
    assert limiter.allow("10.9.9.9", now=121) and not limiter.allow("10.9.9.9", now=122)


def test_the_rate_limiter_holds_at_most_max_clients() -> None:
    limiter = RateLimiter(limit=5, window=60, max_clients=100)
    for n in range(10_000):
        limiter.allow(f"client-{n}", now=1.0)
    assert len(limiter) == 100


async def test_a_trusted_proxy_names_the_client(harness: Harness) -> None:
    """Behind a proxy every request comes from its address: trusted, it is the address it
    forwards that is limited; anyone else's X-Forwarded-For is ignored."""
    forwarded = {"X-Forwarded-For": "203.0.113.7"}
    async with api_for(harness, webhook_rate_per_minute=2, trusted_proxies=["127.0.0.0/8"]) as api:
        api.http._transport.client = ("127.0.0.1", 5000)  # type: ignore[attr-defined]
        codes = [
            (await api.http.post("/webhooks/signup", headers=forwarded)).status_code
            for _ in range(3)
        ]
        other = {"X-Forwarded-For": "198.51.100.1"}
        assert (await api.http.post("/webhooks/signup", headers=other)).status_code == 401
    assert codes == [401, 401, 429]

    # No proxy trusted: whatever X-Forwarded-For says, the address it came from counts.
    settings = harness.settings.model_copy(update={"webhook_rate_per_minute": 2})
    app = create_app(settings=settings, engine=harness.engine, client=harness.client)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        codes = [
            (await http.post("/webhooks/signup", headers={"X-Forwarded-For": f"10.0.0.{n}"}))
            for n in range(3)
        ]
    assert [c.status_code for c in codes] == [401, 401, 429]


def test_trusted_proxies_are_read_comma_separated() -> None:
    settings = Settings(_env_file=None, trusted_proxies="10.0.0.1, 172.16.0.0/12")  # type: ignore[arg-type]
    assert settings.trusted_proxies == ["10.0.0.1", "172.16.0.0/12"]


# -- development secrets stay on this machine ---------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
async def test_the_api_refuses_to_listen_beyond_loopback_with_a_default_secret(
    engine: Engine, host: str
) -> None:
    for secrets in ({}, {"secret_key": "s" * 40}, {"webhook_secret": "w" * 40}):
        settings = Settings(_env_file=None, api_host=host, api_port=0, **secrets)  # type: ignore[arg-type]
        with pytest.raises(InsecureSettings, match="development default"):
            async with serving_api(settings, engine, None):  # type: ignore[arg-type]
                pass


def test_loopback_or_real_secrets_may_serve() -> None:
    assert Settings(_env_file=None, api_host="127.0.0.1").serving_problems("127.0.0.1") == []  # type: ignore[call-arg]
    assert Settings(_env_file=None, **STRONG).serving_problems("0.0.0.0") == []  # type: ignore[arg-type]


async def test_with_default_secrets_a_request_on_another_address_is_refused(
    engine: Engine,
) -> None:
    """However it is served (`uvicorn --host 0.0.0.0` too), a request that reached the app
    on an address other than loopback gets nothing while a secret is the default."""

    async def on(app: FastAPI, server: tuple[str, int]) -> httpx.Response:
        async def asgi(scope, receive, send):  # type: ignore[no-untyped-def]
            await app({**scope, "server": server}, receive, send)

        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as http:
            return await http.get("/login")

    development = app_on(engine)
    refused = await on(development, ("192.0.2.10", 8000))
    assert refused.status_code == 503 and "TANDEM_SECRET_KEY" in refused.text
    assert (await on(development, ("127.0.0.1", 8000))).status_code == 200
    assert (await on(app_on(engine, **STRONG), ("192.0.2.10", 8000))).status_code == 200


def test_production_refuses_short_secrets() -> None:
    short = Settings(  # type: ignore[call-arg]
        _env_file=None,
        production=True,
        public_url="https://success.example.com",
        secret_key="s" * 31,
        webhook_secret="w" * 32,
    )
    assert short.production_problems() == ["TANDEM_SECRET_KEY must be at least 32 bytes"]
    with pytest.raises(InsecureSettings, match="TANDEM_SECRET_KEY must be at least 32 bytes"):
        short.refuse_unsafe_production()
    assert DEV_SECRET not in (short.secret_key, short.webhook_secret)


def test_the_browser_sees_the_headers_too(engine: Engine) -> None:
    with serve(app_on(engine)) as base:
        response = httpx.get(f"{base}/login")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


# -- the API on a browser session ---------------------------------------------------------


async def test_a_change_on_the_session_cookie_needs_the_csrf_token(engine: Engine) -> None:
    """A same-site page's `no-cors` POST carries the dashboard's cookie but cannot add a
    header: on the cookie alone the API reads, and changes nothing."""
    add_staff(engine, "Ada Admin", "ada@team.test", "admin", actor="test")
    _, admin = create_token(engine, "Admin", "ada@team.test")
    transport = httpx.ASGITransport(app=app_on(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as browser:
        login = await browser.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
        signed_in = await browser.post("/login", data={"csrf": csrf, "token": admin})
        assert signed_in.status_code == 303
        page = await browser.get("/")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        new = {"name": "planted", "person": "ada@team.test"}

        assert (await browser.get("/tokens")).status_code == 200  # reading is no change
        forged = await browser.post("/tokens", json=new)
        assert forged.status_code == 403 and forged.json()["error"]["code"] == "csrf"
        wrong = await browser.post("/tokens", json=new, headers={"X-CSRF-Token": "x" * 43})
        assert wrong.status_code == 403
        listed = (await browser.get("/tokens")).json()
        assert "planted" not in str(listed)

        made = await browser.post("/tokens", json=new, headers={"X-CSRF-Token": csrf})
        assert made.status_code == 201, made.text
        # A bearer token needs no CSRF token: no browser sends it by itself.
        by_token = httpx.AsyncClient(transport=transport, base_url="http://test")
        async with by_token:
            headers = {"Authorization": f"Bearer {admin}"}
            assert (await by_token.post("/tokens", json=new, headers=headers)).status_code == 201
