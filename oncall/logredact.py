"""No secret in any log line (SPEC §3), whichever library wrote it.

`REDACTOR` is one `logging.Filter` on every handler oncall's lines go through. Before a record
is written it masks, in the message with its arguments, the traceback and the stack text:

- every configured secret of `Settings` (every `SecretStr` field, and each part of a
  comma-separated rotation list), the forms they travel in (HTTP Basic credentials of Twilio,
  Zendesk and Freshdesk, SMTP AUTH, URL- and JSON-escaped), the database URL's password and
  the path of `ONCALL_HEARTBEAT_URL` (a dead-man's switch's key);
- the ack-link key, once loaded from the database (`use_secret`);
- the token of any Telegram bot URL, `/bot<id>:<token>`, configured or not (httpx logs every
  request's URL at INFO);
- the token of any ack link, `/ack/<token>`: it acts on incidents for 3 days;
- the value of any `Authorization` header written out.

Each becomes `***` (the bot id and `/ack/` stay, for reading the log). It runs on every line,
so it is cheap: one precompiled regular expression over the formatted message. A clean line is
left as it is; in a line to mask, each argument is masked where it stands (formatters such as
uvicorn's access log read the arguments, not the message), else the message becomes the
masked text and the arguments are dropped.

`configure(settings)` sets up a process's logging (every `oncall` command): a stderr handler
at `ONCALL_LOG_LEVEL` unless logging is set up already, and the filter on every handler
there is, uvicorn's included. The app calls `protect(settings)` again when it starts, for
handlers a server added meanwhile (uvicorn run with its own log config).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
import traceback
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from pydantic import SecretStr

if TYPE_CHECKING:
    from oncall.settings import Settings

MASK = "***"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# Found whatever is configured. Each alternative starts with a plain character and none has a
# capturing group, so the expression keeps its fast scan for possible first characters (5x
# faster). What stays in front of the mask (`/bot<id>:`, `/ack/`, `Authorization: Bearer `)
# is found again in the match, by `_KEEP`.
_AUTH_VALUE = (
    r"['\"]?\s*[:=]\s*['\"]?(?:(?:[Bb][Aa][Ss][Ii][Cc]|[Bb][Ee][Aa][Rr][Ee][Rr]|[Tt][Oo][Kk][Ee][Nn])\s+)?"
    r"[^\s'\",;()}\]]+"
)
_PATTERNS = (
    r"/bot\d+:[A-Za-z0-9_-]+",
    r"/ack/[A-Za-z0-9_.~%=+-]+",
    *(spelling + _AUTH_VALUE for spelling in ("Authorization", "authorization", "AUTHORIZATION")),
)
_KEEP = re.compile(r"/bot\d+:|/ack/|authorization['\"]?\s*[:=]\s*['\"]?(?:(?:basic|bearer|token)\s+)?", re.I)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _forms(secret: str) -> set[str]:
    """A secret as it may be written: itself, URL-encoded, JSON-escaped."""
    return {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}


def settings_secrets(settings: Settings) -> set[str]:
    """Every secret value of the settings, in every form a library may log it."""
    value_of = {name: value.get_secret_value() for name, value in settings if isinstance(value, SecretStr)}
    plain: set[str] = set()
    for raw in value_of.values():
        plain.update({raw, raw.strip(), *(part.strip() for part in raw.split(","))})  # rotation lists
    twilio, zendesk = value_of.get("twilio_auth_token"), value_of.get("zendesk_api_token")
    freshdesk, smtp = value_of.get("freshdesk_api_key"), value_of.get("smtp_password")
    if twilio and settings.twilio_account_sid:
        plain.add(_b64(f"{settings.twilio_account_sid}:{twilio}"))
    if zendesk and settings.zendesk_email:
        plain.add(_b64(f"{settings.zendesk_email}/token:{zendesk}"))
    if freshdesk:
        plain.add(_b64(f"{freshdesk}:X"))
    if smtp:
        plain.update({_b64(smtp), _b64(f"\0{settings.smtp_username or ''}\0{smtp}")})
    password = _url_password(settings.database_url)
    if password:
        plain.update({password, unquote(password)})
    if settings.heartbeat_url:
        plain.add(_url_password(settings.heartbeat_url) or "")
        try:
            parts = urlsplit(settings.heartbeat_url)
            key = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
        except ValueError:  # not a URL: all of it
            key = settings.heartbeat_url
        if len(key.strip("/")) >= 4:  # a bare "/" is no key, and masking it would blind the log
            plain.add(key)
    return {form for secret in plain if secret for form in _forms(secret)}


def _url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:  # not a URL (ONCALL_DATABASE_URL with a typo): still find its password
        m = re.search(r"://[^/@:]*:([^/@]*)@", url)
        return m[1] if m else None


class Redactor(logging.Filter):
    """The filter; `redact(text)` for text that is not a log record."""

    def __init__(self) -> None:
        super().__init__()
        self._configured: frozenset[str] = frozenset()
        self._named: dict[str, frozenset[str]] = {}
        self._pattern = self._compile()

    def _compile(self) -> re.Pattern[str]:
        literals = set(self._configured).union(*self._named.values())
        # Longest first, so that a secret containing another is masked whole.
        ordered = sorted(literals, key=len, reverse=True)
        return re.compile("|".join([*_PATTERNS, *(re.escape(s) for s in ordered)]))

    def use(self, settings: Settings) -> None:
        """Masks the secrets of these settings (instead of those of settings used before)."""
        secrets = frozenset(settings_secrets(settings))
        if secrets != self._configured:
            self._configured = secrets
            self._pattern = self._compile()

    def use_secret(self, name: str, *forms: str) -> None:
        """Masks the secret called `name` (the ack-link key, once it is loaded), written in
        any of these forms, instead of what `name` was before."""
        secrets = frozenset(form for f in forms if f for form in _forms(f))
        if self._named.get(name) != secrets:
            self._named[name] = secrets
            self._pattern = self._compile()

    @staticmethod
    def _mask(m: re.Match[str]) -> str:
        keep = _KEEP.match(m[0])
        return keep[0] + MASK if keep is not None and keep.end() < len(m[0]) else MASK

    def redact(self, text: str) -> str:
        return self._pattern.sub(self._mask, text)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "oncall_redacted", False):  # a second handler of the same record
            return True
        sub, mask = self._pattern.sub, self._mask
        try:
            message = record.getMessage()
        except Exception:  # a caller's bad format: logging would print the raw arguments
            message = f"{record.msg!s} (arguments that did not fit it: {record.args!r})"
            record.args = None
        masked = sub(mask, message)
        if masked != message and not self._mask_args(record):
            # A secret across the text and an argument, or in the text itself: the masked line.
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:  # formatters print this text instead of formatting exc_info again
            record.exc_text = sub(mask, record.exc_text)
        if record.stack_info:
            record.stack_info = sub(mask, record.stack_info)
        record.__dict__["oncall_redacted"] = True
        return True

    def _mask_args(self, record: logging.LogRecord) -> bool:
        """Masks each argument, keeping the text and the arguments apart (uvicorn's access
        formatter reads the arguments themselves); False when that does not clean the line."""
        if not record.args or not isinstance(record.msg, str):
            return False
        args: Any = record.args
        if isinstance(args, Mapping):
            args = {k: self._masked(v) for k, v in args.items()}
        else:
            args = tuple(self._masked(a) for a in args)
        try:
            line = record.msg % args
        except Exception:
            return False
        if self.redact(line) != line:
            return False
        record.args = args
        return True

    def _masked(self, value: object) -> object:
        if value is None or isinstance(value, int | float):
            return value  # a number is no secret, and %d needs it as it is
        if isinstance(value, str):
            return self.redact(value)
        text = str(value)
        masked = self.redact(text)
        return value if masked == text else _Masked(masked, self.redact(repr(value)))


class _Masked:
    """An argument whose text held a secret: it formats as the masked text."""

    def __init__(self, text: str, shown: str) -> None:
        self.text, self.shown = text, shown

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.shown


_FORMATTER = logging.Formatter()
REDACTOR = Redactor()
# The formatter of the stderr handler `configure` sets up: `oncall.logline` writes a line
# itself only to a handler that formats with it (and so writes the same text).
STDERR_FORMATTER = logging.Formatter(LOG_FORMAT)


def install(loggers: Iterable[logging.Logger] | None = None) -> None:
    """Puts the filter on every handler of the root logger and of every logger that has its
    own (uvicorn's, the console channel's), and on the handler of last resort."""
    if loggers is None:
        known = logging.Logger.manager.loggerDict.values()
        loggers = [logging.getLogger(), *(lg for lg in known if isinstance(lg, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            handler.addFilter(REDACTOR)  # does nothing when it is there already
    if logging.lastResort is not None:
        logging.lastResort.addFilter(REDACTOR)


def protect(settings: Settings) -> None:
    """Masks these settings' secrets on every handler there is now."""
    REDACTOR.use(settings)
    install()


def configure(settings: Settings, default_level: str = "INFO") -> None:
    """A process's logging: lines on stderr at `ONCALL_LOG_LEVEL` (else `default_level`), with
    every secret masked. Logging someone else set up (a test runner) keeps its handlers and
    level, and gets the filter too."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(STDERR_FORMATTER)
        root.addHandler(handler)
        root.setLevel(settings.log_level or default_level)
        # This process is oncall's own: a traceback nobody caught is masked like a log line.
        sys.excepthook = _excepthook
    protect(settings)


def _excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    sys.stderr.write(REDACTOR.redact("".join(traceback.format_exception(kind, exc, tb))))
