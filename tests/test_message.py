"""The MIME message built from an outbox row (activities/message.py): the same row
always gives the same bytes, and headers are written as the standard library's
compat32 policy writes them."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email.policy import compat32
from email.policy import default as default_policy
from pathlib import Path

import pytest

from activities.message import POLICY, build_message
from activities.rendering import render_email, sample_context
from models.tables import OutboxEmail
from settings import Settings


def _row(key: str = "acme:t1:welcome", subject: str | None = None) -> OutboxEmail:
    rendered = render_email("welcome", sample_context("welcome"))
    return OutboxEmail(
        key=key,
        customer_id="acme",
        template="welcome",
        to_address="dana@acme.example",
        subject=subject or rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
        created_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
    )


def _settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path)


def test_a_resend_is_the_same_message_byte_for_byte(tmp_path: Path) -> None:
    """The boundary comes from the key, like the Message-ID: a delivery retried later,
    or by another worker, sends exactly what the first attempt sent."""
    settings = _settings(tmp_path)
    first = build_message(_row(), settings, customer_mail=True).as_bytes()
    again = build_message(_row(), settings, customer_mail=True).as_bytes()
    assert first == again
    other = build_message(_row("acme:t1:farewell"), settings, customer_mail=True).as_bytes()
    assert other != first


def test_both_parts_read_back_as_written(tmp_path: Path) -> None:
    row = _row(subject="Welcome, Crème Brûlée \u2013 Société")
    raw = build_message(row, _settings(tmp_path), customer_mail=True).as_bytes()
    assert raw.isascii()
    message = email.message_from_bytes(raw, policy=default_policy)
    assert message["Subject"] == row.subject
    parts = [part.get_content() for part in message.iter_parts()]  # type: ignore[attr-defined]
    assert parts == [row.text_body, row.html_body]


STDLIB = compat32.clone(max_line_length=998)


@pytest.mark.parametrize(
    "value",
    [
        "Welcome, Acme Analytics: let's get you started",
        "  leading and trailing spaces,  ",
        "tabs\tand ;commas, =?utf-8?q?not-a-word?=",
        "<https://tandem.example/u/" + "x" * 900 + ">, <mailto:s@t.invalid>",  # over a line
        "word " * 250,  # folded at a space
        "Société",  # not ASCII: an encoded word
        "two\r\n lines",
    ],
)
def test_headers_are_written_as_compat32_writes_them(value: str) -> None:
    for name in ("Subject", "List-Unsubscribe"):
        assert POLICY.fold_binary(name, value) == STDLIB.fold_binary(name, value)
