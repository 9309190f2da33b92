"""Secrets in use: API tokens (stored as SHA-256), the sign-up webhook's HMAC signature,
a small in-memory rate limit for the endpoints a stranger can reach, and the headers
every response carries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re
import time
from collections import OrderedDict, deque
from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from settings import is_loopback

SIGNATURE_HEADER = "X-Tandem-Signature"
TIMESTAMP_HEADER = "X-Tandem-Timestamp"


def sign_webhook(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 over `<timestamp>.<raw body>`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def same_secret(expected: str, sent: object) -> bool:
    """Constant-time comparison of a secret with what a caller sent. What was sent may be
    anything (a header, a form field): non-ASCII text is simply not the secret, where
    `hmac.compare_digest` would raise on it."""
    if not isinstance(sent, str) or not sent.isascii() or not expected:
        return False
    return hmac.compare_digest(expected.encode(), sent.encode())


def verify_webhook(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    tolerance: int,
    now: float | None = None,
) -> str | None:
    """None when the request is authentic and fresh, else the reason it is not."""
    if not timestamp or not signature:
        return f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header"
    # str.isdigit alone admits other scripts' digits, which int() reads too.
    if not (timestamp.isascii() and timestamp.isdigit()):
        return f"{TIMESTAMP_HEADER} must be Unix seconds"
    if abs((now if now is not None else time.time()) - int(timestamp)) > tolerance:
        return "stale or future timestamp"
    # Constant time: the comparison must not tell an attacker how much of it matched.
    if not same_secret(sign_webhook(secret, timestamp, body), signature):
        return "bad signature"
    return None


class RateLimiter:
    """At most `limit` hits per `window` seconds per key (sliding window, in memory: one
    process; put a shared limiter in front of several API processes).

    Memory is bounded: a client idle for a whole window is forgotten (it has no hits
    left to count), and past `max_clients` the idlest are forgotten first, so a flood
    of new addresses costs at most that many entries."""

    def __init__(self, limit: int, window: float, max_clients: int = 10_000) -> None:
        self.limit, self.window, self.max_clients = limit, window, max_clients
        # Least recently seen first: the idle ones are always at the front.
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hits)

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        hits = self._hits.pop(key, None) or deque()
        self._forget_idle(now)
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        allowed = len(hits) < self.limit
        if allowed:
            hits.append(now)
        if hits:
            self._hits[key] = hits
        return allowed

    def _forget_idle(self, now: float) -> None:
        while self._hits:
            oldest = next(iter(self._hits.values()))
            if len(self._hits) < self.max_clients and oldest[-1] > now - self.window:
                return
            self._hits.popitem(last=False)


# -- headers on every response ------------------------------------------------------------

# Only this site's own files: no inline script or style (an injected tag does nothing),
# no framing (clickjacking), forms post only here, and links carry no referrer, since
# customers' links hold their signed tokens in the path.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
# FastAPI's API explorers load Swagger UI and ReDoc from their CDN and start them with
# one inline script, which is allowed by its hash and nothing else.
EXPLORER_SOURCES = "https://cdn.jsdelivr.net"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def explorer_policy(html: bytes) -> str:
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'none'; script-src {EXPLORER_SOURCES} {hashes}; "
        f"style-src {EXPLORER_SOURCES} 'unsafe-inline'; img-src 'self' data: https:; "
        f"font-src {EXPLORER_SOURCES} https://fonts.gstatic.com; connect-src 'self'; "
        "worker-src blob:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    )


class SecurityHeaders:
    """ASGI middleware: SECURITY_HEADERS on every HTTP response (error pages too); the
    API explorers' pages get a policy of their own, made from the page itself."""

    def __init__(self, app: ASGIApp, explorer_paths: Iterable[str | None] = ()) -> None:
        self.app = app
        self.explorer_paths = {path for path in explorer_paths if path}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.explorer_paths:
            await self._explorer(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)

    async def _explorer(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A small page: hold it whole, then name its inline script's hash.
        start: Message = {}
        body = bytearray()

        async def hold(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        await self.app(scope, receive, hold)
        headers = MutableHeaders(scope=start)
        for name, value in SECURITY_HEADERS.items():
            headers[name] = value
        headers["Content-Security-Policy"] = explorer_policy(bytes(body))
        await send(start)
        await send({"type": "http.response.body", "body": bytes(body)})


class LoopbackOnly:
    """ASGI middleware for an app that signs with development secrets, which are public:
    it answers only requests that reach it on a loopback address, whatever address the
    server was told to bind (`uvicorn --host 0.0.0.0` included)."""

    def __init__(self, app: ASGIApp, why: str) -> None:
        self.app, self.why = app, why

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") if scope["type"] in ("http", "websocket") else None
        host = server[0] if server else None
        # An in-process transport (tests) names no address: there is no network to refuse.
        if host and _is_address(host) and not is_loopback(host):
            body = (
                b'{"error": {"status": 503, "code": "development_secrets", "message": '
                + json.dumps(f"refusing to serve on {host}: {self.why}").encode()
                + b', "field": null}}'
            )
            if scope["type"] == "http":
                await send(
                    {
                        "type": "http.response.start",
                        "status": 503,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
