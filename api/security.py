"""Secrets in use: API tokens (stored as SHA-256), the sign-up webhook's HMAC signature,
and a small in-memory rate limit for the endpoints a stranger can reach."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import defaultdict, deque

SIGNATURE_HEADER = "X-Tandem-Signature"
TIMESTAMP_HEADER = "X-Tandem-Timestamp"


def sign_webhook(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 over `<timestamp>.<raw body>`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


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
    try:
        sent = int(timestamp)
    except ValueError:
        return f"{TIMESTAMP_HEADER} must be Unix seconds"
    if abs((now if now is not None else time.time()) - sent) > tolerance:
        return "stale or future timestamp"
    # Constant time: the comparison must not tell an attacker how much of it matched.
    if not hmac.compare_digest(sign_webhook(secret, timestamp, body), signature):
        return "bad signature"
    return None


class RateLimiter:
    """At most `limit` hits per `window` seconds per key (sliding window, in memory: one
    process; put a shared limiter in front of several API processes)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        hits = self._hits[key]
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        return True
