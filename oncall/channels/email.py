"""Customer e-mail over SMTP (aiosmtplib): the reassurance a customer reads in their inbox.

Headers follow RFC 5322 and RFC 3834: `Auto-Submitted: auto-replied` tells the customer's own
autoresponder ("I am on holiday") not to answer, so two robots never loop; the Microsoft
`X-Auto-Response-Suppress` header does the same for Exchange. The body is plain text with a
simple HTML alternative built from the same text.

`ONCALL_SMTP_STARTTLS=true` (the default) requires STARTTLS: a server that does not offer it is
an error, never a silent plain-text send. Port 465 speaks TLS from the first byte (SMTPS).
"""

from __future__ import annotations

import html
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid, parseaddr

import aiosmtplib

from oncall.channels.base import Delivery
from oncall.settings import Settings

SMTPS_PORT = 465


def html_body(text: str, language: str) -> str:
    """The text as a minimal HTML page: blank lines separate paragraphs, newlines are breaks."""
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    body = "\n".join("<p>" + html.escape(p).replace("\n", "<br>\n") + "</p>" for p in paragraphs)
    return (
        f'<!doctype html>\n<html lang="{html.escape(language)}">\n<head><meta charset="utf-8"></head>\n'
        '<body style="font-family: sans-serif; line-height: 1.5">\n'
        f"{body}\n</body>\n</html>\n"
    )


class EmailSender:
    """Sends one customer e-mail per call; off (`configured() is False`) without host and From."""

    name = "email"

    def __init__(
        self, settings: Settings, *, timeout: float = 30.0, tls_context: ssl.SSLContext | None = None
    ):
        self.settings = settings
        self.timeout = timeout
        # Tests trust their own certificate with this; production uses the system store.
        self.tls_context = tls_context

    def configured(self) -> bool:
        return bool(self.settings.smtp_host and self.settings.smtp_from)

    def build(
        self, to: str, name: str | None, subject: str, text: str, language: str, now: datetime
    ) -> EmailMessage:
        """The message exactly as it goes on the wire (without the SMTP envelope)."""
        sender = self.settings.smtp_from or ""
        domain = parseaddr(sender)[1].rpartition("@")[2] or None
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = formataddr((name, to)) if name and "@" not in name else to
        msg["Subject"] = subject
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = make_msgid("oncall", domain=domain)
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
        msg.set_content(text)
        msg.add_alternative(html_body(text, language), subtype="html")
        # After the body: set_content() clears every Content-* header it finds.
        msg["Content-Language"] = language
        return msg

    async def send(
        self, to: str, name: str | None, subject: str, text: str, language: str, now: datetime
    ) -> Delivery:
        """Sends; a refusal in the 4xx range or a connection problem is retryable, 5xx is not."""
        s = self.settings
        if not self.configured():
            return Delivery(ok=False, error="e-mail is off (ONCALL_SMTP_HOST / ONCALL_SMTP_FROM not set)")
        msg = self.build(to, name, subject, text, language, now)
        implicit_tls = s.smtp_port == SMTPS_PORT
        try:
            await aiosmtplib.send(
                msg,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                use_tls=implicit_tls,
                start_tls=False if implicit_tls else s.smtp_starttls,
                tls_context=self.tls_context,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            return Delivery(ok=False, error=_describe(exc), retryable=all(400 <= c < 500 for c in codes))
        except aiosmtplib.SMTPResponseException as exc:
            return Delivery(ok=False, error=_describe(exc), retryable=400 <= exc.code < 500)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Connection refused, timeouts, TLS problems: the server may be back in a moment.
            return Delivery(ok=False, error=_describe(exc), retryable=True)
        return Delivery(ok=True, ref=str(msg["Message-ID"]))


def _describe(exc: BaseException) -> str:
    # Never the password: aiosmtplib's messages carry the server's reply, not our credentials.
    text = str(exc).strip() or type(exc).__name__
    return f"SMTP: {text}"[:300]
