"""Production mode refuses settings that would be unsafe with real customers."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from api.main import create_app
from settings import InsecureSettings, Settings
from stack import run_worker

SECRETS = {"secret_key": "s" * 40, "webhook_secret": "w" * 40}


def production(**values: object) -> Settings:
    return Settings(_env_file=None, production=True, **values)  # type: ignore[arg-type]


def test_default_secrets_are_refused(engine: Engine) -> None:
    settings = production(public_url="https://success.example.com")
    with pytest.raises(InsecureSettings, match=r"TANDEM_SECRET_KEY.*TANDEM_WEBHOOK_SECRET"):
        create_app(settings, engine)


@pytest.mark.parametrize("url", ["http://success.example.com", "https://", "https:///p"])
def test_a_public_url_that_is_not_https_to_a_host_is_refused(engine: Engine, url: str) -> None:
    settings = production(public_url=url, **SECRETS)
    with pytest.raises(InsecureSettings, match="TANDEM_PUBLIC_URL must be https"):
        create_app(settings, engine)


async def test_the_worker_refuses_too() -> None:
    """It writes the links in customer emails: it checks before connecting anywhere."""
    settings = production(public_url="http://success.example.com", **SECRETS)
    with pytest.raises(InsecureSettings, match="TANDEM_PUBLIC_URL"):
        await run_worker(settings)


@pytest.mark.parametrize(
    "url", ["https://success.example.com", "http://localhost:8000", "http://127.0.0.1:8000"]
)
def test_https_or_loopback_with_real_secrets_starts(engine: Engine, url: str) -> None:
    assert production(public_url=url, **SECRETS).production_problems() == []
    create_app(production(public_url=url, **SECRETS), engine)


def test_development_mode_starts_with_the_defaults(engine: Engine) -> None:
    settings = Settings(_env_file=None, public_url="http://example.com")  # type: ignore[call-arg]
    assert not settings.production and len(settings.production_problems()) == 3
    create_app(settings, engine)
