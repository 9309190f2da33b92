"""How a built message leaves: by SMTP when a relay is configured (STARTTLS verified,
never a password in clear), otherwise as an .eml file in the outbox directory."""

from __future__ import annotations

import contextlib
import os
import smtplib
import ssl
from collections.abc import Callable
from email.message import Message

from activities.message import eml_filename
from settings import Settings


def transmit(
    s: Settings, message: Message, key: str, timeout: float, alive: Callable[[], None]
) -> None:
    """Send one message by SMTP when a relay is configured, else write it as an .eml
    file in the outbox directory (unless TANDEM_EMAIL_FILES is off: then the outbox row
    is all there is). `alive` heartbeats between the slow steps."""
    if s.smtp_host:
        smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=timeout)
        try:
            alive()
            smtp.ehlo()
            secure = s.smtp_starttls and smtp.has_extn("starttls")
            if secure:
                # The server's certificate is verified (and its name), against the
                # system's CAs or TANDEM_SMTP_TLS_CA.
                context = ssl.create_default_context(cafile=s.smtp_tls_ca)
                smtp.starttls(context=context)
                smtp.ehlo()
            if s.smtp_username and not secure:
                # Never send a password in clear: a relay that forgot STARTTLS, or a
                # setting that turned it off, would show it to the network.
                why = (
                    "the SMTP server offers no STARTTLS"
                    if s.smtp_starttls
                    else "TANDEM_SMTP_STARTTLS is false"
                )
                raise smtplib.SMTPNotSupportedError(
                    f"{why}; refusing to send the SMTP password without TLS"
                )
            alive()
            if s.smtp_username:
                smtp.login(s.smtp_username, s.smtp_password or "")
            smtp.send_message(message)
        except BaseException:
            smtp.close()
            raise
        # Sent: a QUIT that fails or times out must not make it count as unsent.
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.quit()
        smtp.close()
        return
    if not s.email_files:  # a held email, released: the outbox row is all there is
        return
    s.outbox_dir.mkdir(parents=True, exist_ok=True)
    path = s.outbox_dir / eml_filename(key)
    # Write then rename: a crash mid-write never leaves a half message in the outbox.
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(message.as_bytes())
    os.replace(partial, path)
