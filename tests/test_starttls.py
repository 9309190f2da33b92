"""STARTTLS for real: an SMTP server (aiosmtpd) that offers TLS with a certificate made
here, signed by a CA made here, and logs no one in without it."""

from __future__ import annotations

import datetime as dt
import ipaddress
import smtplib
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine

from activities.email import EmailActivities
from tests.test_email import Collector, engine, free_port, make_settings, outbox, welcome

__all__ = ["engine"]  # test_email's records: one customer, Acme


class TlsCollector(Collector):
    """Remembers, per message, whether it came over TLS."""

    def __init__(self) -> None:
        super().__init__()
        self.over_tls: list[bool] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.over_tls.append(session.ssl is not None)
        return await super().handle_DATA(server, session, envelope)


CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
    key_encipherment=False, data_encipherment=False, key_agreement=False,
    encipher_only=False, decipher_only=False,
)  # fmt: skip


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate it signs for 127.0.0.1 and localhost: (ca, cert, key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Tandem test CA"))
        .issuer_name(_name("Tandem test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[TlsCollector, int, Path]]:
    """Offers STARTTLS, and requires it before MAIL and before AUTH."""
    ca, cert, key = make_certificates(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    collector = TlsCollector()
    port = free_port()
    controller = Controller(
        collector, hostname="127.0.0.1", port=port, tls_context=context,
        require_starttls=True, authenticator=collector.authenticate, auth_require_tls=True,
    )  # fmt: skip
    controller.start()
    yield collector, port, ca
    controller.stop()


def test_mail_goes_over_starttls_and_logs_in_inside_it(
    engine: Engine, tmp_path: Path, tls_server: tuple[TlsCollector, int, Path]
) -> None:
    collector, port, ca = tls_server
    settings = make_settings(
        tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=True,
        smtp_tls_ca=ca, smtp_username="tandem", smtp_password="secret",
    )  # fmt: skip
    acts = EmailActivities(engine, settings)
    acts.deliver_email(acts.compose_email(welcome()).key)
    assert collector.logins == [(b"tandem", b"secret")]
    assert collector.over_tls == [True] and len(collector.envelopes) == 1
    [row] = outbox(engine)
    assert (row.status, row.delivered_via) == ("sent", "smtp")


def test_a_certificate_not_signed_by_a_trusted_ca_is_refused(
    engine: Engine, tmp_path: Path, tls_server: tuple[TlsCollector, int, Path]
) -> None:
    """Without TANDEM_SMTP_TLS_CA the system's CAs are asked, and they do not know ours:
    the password is not sent to a server that cannot prove who it is."""
    collector, port, _ = tls_server
    settings = make_settings(
        tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=True,
        smtp_username="tandem", smtp_password="secret",
    )  # fmt: skip
    acts = EmailActivities(engine, settings)
    with pytest.raises(ssl.SSLCertVerificationError):
        acts.deliver_email(acts.compose_email(welcome()).key)
    assert collector.logins == [] and collector.envelopes == []
    [row] = outbox(engine)
    assert row.status == "pending" and "CERTIFICATE_VERIFY_FAILED" in (row.last_error or "")


def test_with_starttls_turned_off_the_password_is_not_sent(
    engine: Engine, tmp_path: Path, tls_server: tuple[TlsCollector, int, Path]
) -> None:
    collector, port, ca = tls_server
    settings = make_settings(
        tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
        smtp_tls_ca=ca, smtp_username="tandem", smtp_password="secret",
    )  # fmt: skip
    acts = EmailActivities(engine, settings)
    with pytest.raises(smtplib.SMTPNotSupportedError, match="password without TLS"):
        acts.deliver_email(acts.compose_email(welcome()).key)
    assert collector.logins == [] and collector.envelopes == []
