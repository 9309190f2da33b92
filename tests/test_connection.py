"""How Tandem connects to an existing Temporal cluster: mTLS files, an API key, or
neither for the embedded dev server."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from lifecycles import LifecycleError, tls_config
from settings import Settings


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_the_embedded_dev_server_needs_no_tls() -> None:
    assert tls_config(settings()) is False


def test_a_client_certificate_and_key_turn_on_mtls(tmp_path: Path) -> None:
    cert, key, ca = tmp_path / "client.pem", tmp_path / "client.key", tmp_path / "ca.pem"
    cert.write_bytes(b"CERT")
    key.write_bytes(b"KEY")
    ca.write_bytes(b"CA")
    tls = tls_config(settings(temporal_tls_cert=cert, temporal_tls_key=key, temporal_tls_ca=ca))
    assert isinstance(tls, TLSConfig)
    assert (tls.client_cert, tls.client_private_key, tls.server_root_ca_cert) == (
        b"CERT",
        b"KEY",
        b"CA",
    )


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_bytes(b"CERT")
    with pytest.raises(LifecycleError, match="go together"):
        tls_config(settings(temporal_tls_cert=cert))


def test_an_api_key_implies_tls_and_stays_out_of_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_TEMPORAL_API_KEY", "secret-api-key")
    configured = Settings(_env_file=None)  # type: ignore[call-arg]
    assert tls_config(configured) is True
    assert "secret-api-key" not in repr(configured)
