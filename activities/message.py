"""The MIME message built from an outbox row: both parts and the headers that make a
resend recognisable (Message-ID from the idempotency key) and customer mail easy to
leave (List-Unsubscribe, with RFC 8058 one-click)."""

from __future__ import annotations

import email.policy
import hashlib
import re
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from links import LinkSigner
from models.tables import OutboxEmail
from settings import Settings


def message_id(key: str) -> str:
    """The same key always gives the same Message-ID, so a resend is recognisable."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@tandem>"


def eml_filename(key: str) -> str:
    # The hash suffix keeps keys that differ only in unsafe characters apart.
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:180]
    return f"{safe}-{hashlib.sha256(key.encode()).hexdigest()[:8]}.eml"


def unsubscribe_url(customer_id: str, settings: Settings) -> str:
    return LinkSigner(settings.secret_key, settings.public_url).unsubscribe_link(customer_id)


# Headers may be as long as RFC 5322 allows. At the default 78 characters the library
# folds a long unsubscribe URL into RFC 2047 encoded words, and mail programs then no
# longer see the <URL> that List-Unsubscribe (RFC 2369, 8058) must show them.
POLICY = email.policy.default.clone(max_line_length=998)


def build_message(row: OutboxEmail, settings: Settings, customer_mail: bool) -> EmailMessage:
    message = EmailMessage(policy=POLICY)
    message["From"] = settings.mail_from
    message["To"] = row.to_address
    message["Subject"] = row.subject
    # The compose time, not the send time: a resend is then byte-for-byte the same mail.
    message["Date"] = format_datetime(row.created_at)
    message["Message-ID"] = message_id(row.key)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to us
    if customer_mail:
        address = parseaddr(settings.mail_from)[1]
        # The link first: mail programs that offer an "Unsubscribe" button use the first
        # URI they support, and with List-Unsubscribe-Post (RFC 8058) they POST to it
        # without opening a page. The mailto stays for programs that only know mail;
        # its replies reach the team, who record them (`tandem unsubscribe`).
        link = unsubscribe_url(row.customer_id, settings)
        message["List-Unsubscribe"] = f"<{link}>, <mailto:{address}?subject=unsubscribe>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(row.text_body)
    message.add_alternative(row.html_body, subtype="html")
    return message
