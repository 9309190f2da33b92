"""The MIME message built from an outbox row: both parts and the headers that make a
resend recognisable (Message-ID from the idempotency key) and customer mail easy to
leave (List-Unsubscribe, with RFC 8058 one-click)."""

from __future__ import annotations

import hashlib
import re
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import format_datetime, formataddr, parseaddr

from links import LinkSigner
from models.tables import OutboxEmail
from settings import Settings


def message_id(key: str) -> str:
    """The same key always gives the same Message-ID, so a resend is recognisable."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@tandem>"


def copy_key(key: str, address: str) -> str:
    """One recipient's copy of a step's email, when it goes to several people: a key (so
    a Message-ID and a record of being sent) of its own, stable for the address."""
    return f"{key}/to:{hashlib.sha256(address.encode()).hexdigest()[:12]}"


def eml_filename(key: str) -> str:
    # The hash suffix keeps keys that differ only in unsafe characters apart.
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:180]
    return f"{safe}-{hashlib.sha256(key.encode()).hexdigest()[:8]}.eml"


def unsubscribe_url(customer_id: str, settings: Settings, contact: str | None = None) -> str:
    """The whole account's link, or a contact's own (their copy's)."""
    signer = LinkSigner(settings.secret_key, settings.public_url)
    return signer.unsubscribe_link(customer_id, contact)


class _Policy(Compat32):
    """compat32, writing a header that fits on its line as it is: compat32 runs every
    header through email.header.Header's folding, which then changes nothing for these
    (ASCII, no line breaks, shorter than a line) and cost a third of writing a message."""

    def _fold(self, name: str, value: object, sanitize: bool) -> str:
        if (
            isinstance(value, str)
            and value.isascii()
            and "\r" not in value
            and "\n" not in value
            and len(name) + 2 + len(value) <= (self.max_line_length or 78)
        ):
            return f"{name}: {value}{self.linesep}"
        return super()._fold(name, value, sanitize)  # type: ignore[misc]


# compat32's classic classes, not EmailMessage: they take headers as given instead of
# parsing each, 1 ms of CPU a message against 3, two per sign-up (docs/benchmarks.md).
# Lines as long as RFC 5322 allows: folded, a long unsubscribe <URL> would break.
POLICY = _Policy(max_line_length=998)
# Quoted-printable bodies stay readable in the .eml files of the file outbox.
UTF8 = Charset("utf-8")
UTF8.body_encoding = QP


def _text(value: str) -> str | Header:
    """A header value; words outside ASCII as RFC 2047 encoded words."""
    return value if value.isascii() else Header(value, UTF8, maxlinelen=998)


def build_message(row: OutboxEmail, settings: Settings, customer_mail: bool) -> Message:
    # A boundary of the key's own: quoted-printable parts never contain "=_", so the
    # generator need not search both parts for a boundary that does not occur in them.
    boundary = f"=_{hashlib.sha256(row.key.encode()).hexdigest()[:32]}"
    message = MIMEMultipart("alternative", boundary=boundary, policy=POLICY)
    name, address = parseaddr(settings.mail_from)
    message["From"] = formataddr((name, address), charset="utf-8")
    message["To"] = _text(row.to_address)
    message["Subject"] = _text(row.subject)
    # The compose time, not the send time: a resend is then the same mail.
    message["Date"] = format_datetime(row.created_at)
    message["Message-ID"] = message_id(row.key)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to us
    if customer_mail:
        # The link first: mail programs that offer an "Unsubscribe" button use the first
        # URI they support, and with List-Unsubscribe-Post (RFC 8058) they POST to it
        # without opening a page. The mailto stays for programs that only know mail;
        # its replies reach the team, who record them (`tandem unsubscribe`).
        link = unsubscribe_url(row.customer_id, settings, row.contact_email)
        message["List-Unsubscribe"] = f"<{link}>, <mailto:{address}?subject=unsubscribe>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.attach(MIMEText(row.text_body, "plain", UTF8, policy=POLICY))
    message.attach(MIMEText(row.html_body, "html", UTF8, policy=POLICY))
    return message
