"""All configuration in one place: environment variables `TANDEM_*` (or a `.env` file)."""

from __future__ import annotations

import ipaddress
import json
from datetime import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Good enough for a laptop, and public: with it, Tandem serves only on loopback, and
# `TANDEM_PRODUCTION=true` refuses to start.
DEV_SECRET = "tandem-development-secret-change-me"
# HMAC-SHA256 keys (sessions, links, webhooks): shorter than the hash is guessable sooner.
MIN_SECRET_BYTES = 32
SECRETS = ("secret_key", "webhook_secret")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TANDEM_", env_file=".env", extra="ignore")

    # Where things live. var/ holds the embedded stack's data: Temporal's file, the
    # SQLite records and the outbox of .eml files.
    var_dir: Path = Path("var")
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TANDEM_DATABASE_URL", "DATABASE_URL"),
        description="SQLAlchemy URL; default sqlite:///<var_dir>/tandem.db",
    )
    plans_dir: Path | None = Field(
        default=None, description="extra plan templates (*.toml) beside the built-in ones"
    )

    # Temporal.
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "tandem"
    temporal_ui_port: int = 8233
    workflow_sandbox: bool = Field(
        default=False, description="run lifecycles in Temporal's strict workflow sandbox"
    )
    # An existing cluster (Temporal Cloud or your own): mTLS client certificate and key
    # files, or an API key. Either one turns TLS on.
    temporal_tls_cert: Path | None = Field(default=None, description="client certificate (PEM)")
    temporal_tls_key: Path | None = Field(default=None, description="its private key (PEM)")
    temporal_tls_ca: Path | None = Field(
        default=None, description="server CA (PEM) when not a public one"
    )
    temporal_tls: bool = Field(default=False, description="TLS without a client certificate")
    temporal_api_key: str | None = Field(default=None, repr=False)
    # Payload encryption (codec.py): comma-separated or a JSON list; the first encrypts.
    encryption_keys: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)
    codec_token: str | None = Field(
        default=None,
        repr=False,
        description="bearer token the codec server requires (it hands out plaintext)",
    )
    codec_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="host names the codec server answers to besides loopback; comma-separated",
    )

    # Email. Without an SMTP host, mail is kept in the outbox and written as .eml files.
    smtp_host: str | None = None
    email_files: bool = Field(
        default=True,
        description="without an SMTP host, also write each email as an .eml file in "
        "var/outbox/; false keeps it in the outbox table only (`tandem simulate` does)",
    )
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    smtp_tls_ca: Path | None = Field(
        default=None, description="CA file (PEM) for the SMTP server's certificate, if private"
    )
    smtp_timeout_seconds: float = 20.0
    mail_from: str = "Tandem Success Team <success@tandem.invalid>"
    managers_email: str = "success-managers@tandem.invalid"
    # Who runs the CLI: a rep then sees, as in the API and the dashboard, the accounts
    # they are rep on and their own tasks, and completes only those.
    staff_email: str | None = Field(
        default=None, description="the staff member the CLI acts as (TANDEM_STAFF_EMAIL)"
    )

    # The HTTP API and dashboard.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="base of the links in emails (customers' pages, the staff dashboard)",
    )
    secret_key: str = Field(
        default=DEV_SECRET, description="signs survey and plan links and browser sessions"
    )
    webhook_secret: str = Field(default=DEV_SECRET, description="HMAC key of POST /webhooks/signup")
    webhook_tolerance_seconds: int = 300
    webhook_rate_per_minute: int = Field(default=120, ge=1, description="per client address")
    login_rate_per_minute: int = Field(default=10, ge=1, description="per client address")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For "
        "names the client; comma-separated",
    )
    survey_link_days: int = 14
    plan_link_days: int = 60
    events_retention_days: int = Field(
        default=30, ge=1, description="days raw product events are kept (rollups stay)"
    )
    production: bool = Field(
        default=False, description="refuse default secrets; secure cookies (HTTPS)"
    )

    # Outbound webhooks and Slack (docs/webhooks.md). Endpoints on loopback, private or
    # link-local addresses are refused unless allowed (tests, a receiver on this host).
    webhooks_allow_private: bool = False
    webhooks_dispatch_seconds: float = Field(
        default=1.0, gt=0, description="how often the worker looks for events to deliver"
    )
    webhooks_attempt_timeout_seconds: float = Field(default=15.0, gt=0)
    webhooks_first_retry_seconds: float = Field(
        default=5.0, gt=0, description="backoff before the second attempt; doubles, jittered"
    )
    webhooks_longest_retry_seconds: float = Field(default=10 * 3600.0, gt=0)
    webhooks_give_up_seconds: float = Field(
        default=3 * 86400.0, gt=0, description="retry for this long, then disable the endpoint"
    )
    webhooks_retention_days: int = Field(
        default=30, ge=1, description="days delivered events and their attempts are kept"
    )
    webhooks_rotation_seconds: float = Field(
        default=86400.0, ge=0, description="the old secret still signs this long after a rotation"
    )

    # Manager digests, on a Temporal Schedule (docs/webhooks.md#digests).
    digest_every_days: int = Field(default=7, ge=1, le=366)
    digest_time_of_day: time = Field(
        default=time(8, 0), description="UTC; weekly digests go on Mondays"
    )

    @field_validator("encryption_keys", "trusted_proxies", "codec_hosts", mode="before")
    @classmethod
    def _key_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                return json.loads(value)
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    def insecure_defaults(self) -> list[str]:
        """The secrets still at their development defaults."""
        return [name for name in SECRETS if getattr(self, name) == DEV_SECRET]

    def serving_problems(self, host: str) -> list[str]:
        """Why the API must not listen on `host`: the development secrets are public, so
        anyone who can reach it could forge a session cookie, a link or a webhook."""
        if is_loopback(host):
            return []
        return [
            f"TANDEM_{name.upper()} is the public development default: set it, or serve on "
            "127.0.0.1 only"
            for name in self.insecure_defaults()
        ]

    def refuse_unsafe_serving(self, host: str) -> None:
        problems = self.serving_problems(host)
        if problems:
            raise InsecureSettings(f"refusing to serve on {host}: " + "; ".join(problems))

    def production_problems(self) -> list[str]:
        """What production mode refuses to start with. The public URL goes into every
        customer email's links and the session cookie is HTTPS-only, so it must be
        https, except on this machine's own loopback (trying the compose stack)."""
        problems = [
            f"TANDEM_{name.upper()} is the development default" for name in self.insecure_defaults()
        ]
        problems += [
            f"TANDEM_{name.upper()} must be at least {MIN_SECRET_BYTES} bytes"
            for name in SECRETS
            if name not in self.insecure_defaults()
            and len(getattr(self, name).encode()) < MIN_SECRET_BYTES
        ]
        url = urlsplit(self.public_url)
        local = url.hostname in {"localhost", "127.0.0.1", "::1"}
        if (url.scheme != "https" or not url.hostname) and not local:
            problems.append(f"TANDEM_PUBLIC_URL must be https://host (it is {self.public_url})")
        return problems

    def refuse_unsafe_production(self) -> None:
        """Called by the API and the worker (which writes the links) as they start."""
        problems = self.production_problems() if self.production else []
        if problems:
            raise InsecureSettings("refusing to start in production: " + "; ".join(problems))

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'tandem.db'}"

    @property
    def outbox_dir(self) -> Path:
        return self.var_dir / "outbox"

    @property
    def temporal_db_file(self) -> Path:
        return self.var_dir / "temporal.db"


class InsecureSettings(RuntimeError):
    pass


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (an address in brackets too)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
