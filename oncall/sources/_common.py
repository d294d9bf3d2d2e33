"""What every platform module shares: errors, HMAC helpers and forgiving payload readers.

Payload readers never raise: a platform may omit, rename or mistype any field, and a signed
payload must still become an event (at worst `unrecognised`), never a 5xx.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from oncall.core.money import format_amount


class WebhookError(Exception):
    """A delivery refused; `status` is the HTTP answer, the message says what was wrong."""

    status = 400


class SignatureError(WebhookError):
    """Missing, malformed, stale or wrong signature (→ 401, nothing stored)."""

    status = 401


class PayloadError(WebhookError):
    """The body cannot be read as this platform's payload (→ 400)."""

    status = 400


_BLOCK = 64  # SHA-256's block size
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


@functools.lru_cache(maxsize=64)
def _keyed(secret: bytes) -> tuple[Any, Any]:
    """SHA-256 states that have hashed the secret's inner and outer pads (RFC 2104)."""
    key = (hashlib.sha256(secret).digest() if len(secret) > _BLOCK else secret).ljust(_BLOCK, b"\0")
    return hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))


def hmac_sha256(secret: bytes, message: bytes) -> bytes:
    """HMAC-SHA256, as `hmac.digest`, from the secret's pads hashed once: OpenSSL's set-up
    of an HMAC for each message cost as much as hashing a webhook's body."""
    inner, outer = _keyed(secret)
    inner = inner.copy()
    inner.update(message)
    outer = outer.copy()
    outer.update(inner.digest())
    digest: bytes = outer.digest()
    return digest


def hmac_b64(secret: bytes, message: bytes) -> str:
    return base64.b64encode(hmac_sha256(secret, message)).decode()


def matches_any(given: str, expected: Iterable[str]) -> bool:
    """Constant-time comparison of `given` with each expected value (every one is compared)."""
    given_b = given.encode()
    ok = False
    for value in expected:
        ok |= hmac.compare_digest(given_b, value.encode())
    return ok


def require_secrets(source: str, secrets: list[bytes]) -> None:
    if not secrets:
        raise SignatureError(
            f"no secret is configured for {source} (set ONCALL_{source.upper()}_"
            f"{'TOKEN' if source == 'freshdesk' else 'SECRET'}); unsigned webhooks are never accepted"
        )


def verify_body_hmac_b64(
    source: str, headers: Mapping[str, str], header: str, body: bytes, secrets: list[bytes]
) -> None:
    """`header` must be the base64 HMAC-SHA256 of the raw body with any configured secret (rotation)."""
    require_secrets(source, secrets)
    given = headers.get(header.lower())
    if not given:
        raise SignatureError(f"missing {header} header")
    if not matches_any(given.strip(), [hmac_b64(s, body) for s in secrets]):
        raise SignatureError(f"{header} does not match the body with any configured secret")


def scheme_value(
    headers: Mapping[str, str], header: str, scheme: str, sep: str, *, missing: str, malformed: str
) -> str:
    """What follows `scheme` and `sep` in `header` (`sha256=HEX`, `Bearer TOKEN`), the scheme in
    any case, as given (not stripped); SignatureError(`missing`) without the header,
    SignatureError(`malformed`) for another scheme or nothing after it."""
    given = headers.get(header)
    if not given:
        raise SignatureError(missing)
    found, _, value = given.strip().partition(sep)
    if found.lower() != scheme or not value.strip():
        raise SignatureError(malformed)
    return value


def body_hash(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


# --- forgiving readers -------------------------------------------------------------------------


def dig(obj: Any, *path: str) -> Any:
    """obj[path[0]][path[1]]…, or None where any step is missing or not a mapping."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def text(value: Any, limit: int = 500) -> str | None:
    """A non-empty one-line string, or None (numbers become strings; other types are dropped)."""
    if value.__class__ is str:
        # Most are one clean line already (every whitespace but " " is unprintable): not
        # split and joined again.
        if value.isprintable() and "  " not in value and value[:1] != " " and value[-1:] != " ":
            return value[:limit] if value else None
    elif value is None or isinstance(value, bool):
        return None
    elif isinstance(value, int | float):
        value = str(value)
    elif not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value[:limit] if value else None


def lower(value: Any) -> str | None:
    t = text(value)
    return t.lower() if t is not None else None


def first(*values: Any) -> str | None:
    for value in values:
        t = text(value)
        if t is not None:
            return t
    return None


def number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        f = float(value)
    elif isinstance(value, str):
        try:
            f = float(value.strip().replace(",", "."))
        except ValueError:
            return None
    else:
        return None
    return f if f == f and abs(f) != float("inf") else None


def timestamp(value: Any) -> datetime | None:
    """Epoch seconds or ISO 8601 (a naive time is taken as UTC) → aware datetime, else None."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str) and value.strip():
            v = value.strip().replace("Z", "+00:00")
            if v.isdigit():
                return datetime.fromtimestamp(int(v), UTC)
            parsed = datetime.fromisoformat(v)
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


# Zendesk's {{ticket.requester.language}} renders the language's name, not its code.
_LANGUAGE_NAMES = {
    "español": "es", "spanish": "es", "castellano": "es", "english": "en", "inglés": "en",
    "français": "fr", "french": "fr", "deutsch": "de", "german": "de", "italiano": "it",
    "italian": "it", "português": "pt", "portuguese": "pt", "català": "ca", "catalan": "ca",
    "nederlands": "nl", "dutch": "nl", "euskara": "eu", "galego": "gl",
}  # fmt: skip


def language_code(value: Any) -> str | None:
    """ "es", "es-ES", "es_ES", "Español" or "Spanish" → "es"."""
    t = lower(value)
    if t is None:
        return None
    t = t.split(" ")[0].strip("()")
    code = _LANGUAGE_NAMES.get(t)
    if code is not None:
        return code
    base = t.replace("_", "-").split("-")[0]
    return base if 2 <= len(base) <= 3 and base.isalpha() else None


def join_name(*parts: Any) -> str | None:
    return text(" ".join(t for t in (text(p) for p in parts) if t))


def money(amount: float | None, currency: str | None) -> str:
    if amount is None:
        return ""
    return format_amount(amount, currency)


def summary(*parts: str | None) -> str:
    """Non-empty parts joined with ", ", one line, at most 200 characters."""
    line = ", ".join(p for p in parts if p)
    return line if len(line) <= 200 else line[:199] + "…"


def section(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """obj[key] when it is an object, else an empty one."""
    value = obj.get(key)
    return value if isinstance(value, dict) else {}
