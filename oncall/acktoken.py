"""Signed, expiring ack links: `{ONCALL_PUBLIC_URL}/ack/{token}`.

A token names the incidents (ranges keep a bundle of 50 short enough for an SMS), the person
it was sent to, and when it expires; an HMAC-SHA256 (truncated to 128 bits) signs it. Holding
the link is the proof of identity, as with PagerDuty's and Opsgenie's e-mail links, so a token
is short-lived and only ever lets its person act on its incidents.

    token = base64url("3,5-9~ana~<expiry, unix seconds, base 36>") "." base64url(mac[:16])
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DEFAULT_TTL = timedelta(days=3)  # longer than any escalation chain, short enough to be harmless


class InvalidToken(Exception):
    """The token is malformed, forged or expired; `str()` says which, for the 401 page."""


class ForgedToken(InvalidToken):
    """Well formed, but not signed with this key (forged, or signed with another key)."""


@dataclass(frozen=True, slots=True)
class AckClaim:
    incident_ids: tuple[int, ...]
    person_id: str
    expires_at: datetime


def new_key() -> bytes:
    return secrets.token_bytes(32)


def encode_ids(ids: tuple[int, ...]) -> str:
    """(3, 5, 6, 7, 9) -> "3,5-7,9"."""
    out: list[str] = []
    ordered = sorted(set(ids))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def decode_ids(text: str) -> tuple[int, ...]:
    ids: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise InvalidToken("malformed link")
        first, last = int(lo), int(hi) if sep else int(lo)
        if last < first or last - first > 10_000:
            raise InvalidToken("malformed link")
        ids.extend(range(first, last + 1))
    return tuple(ids)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """Strict: only the spelling `_b64` writes. Python's decoder skips characters outside the
    alphabet, takes padding and ignores the low bits of the last character, so several
    spellings would decode to one token; a link has exactly one."""
    try:
        data = base64.b64decode(text.translate(_TO_STANDARD) + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed link") from None
    if _b64(data) != text:
        raise InvalidToken("malformed link")
    return data


_TO_STANDARD = str.maketrans("-_", "+/")


class AckSigner:
    def __init__(self, key: bytes, ttl: timedelta = DEFAULT_TTL) -> None:
        if len(key) < 16:
            raise ValueError("the ack-link key must be at least 16 bytes")
        self._key = key
        self.ttl = ttl

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, b"oncall-ack\x00" + payload, hashlib.sha256).digest()[:16]

    def sign(self, incident_ids: tuple[int, ...], person_id: str, now: datetime) -> str:
        if not incident_ids:
            raise ValueError("an ack link needs at least one incident")
        if "~" in person_id:
            raise ValueError(f"person id {person_id!r} cannot contain '~'")
        expires = int((now + self.ttl).timestamp())
        payload = f"{encode_ids(incident_ids)}~{person_id}~{_base36(expires)}".encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def verify(self, token: str, now: datetime) -> AckClaim:
        body, _, sig = token.partition(".")
        payload, mac = _unb64(body), _unb64(sig)
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise ForgedToken("this link is not valid")
        try:
            ids, person, expires = payload.decode().split("~")
            expires_at = datetime.fromtimestamp(int(expires, 36), UTC)
        except ValueError as exc:
            raise InvalidToken("malformed link") from exc
        if now >= expires_at:
            raise InvalidToken("this link has expired")
        return AckClaim(decode_ids(ids), person, expires_at)

    def url(self, public_url: str, incident_ids: tuple[int, ...], person_id: str, now: datetime) -> str:
        return f"{public_url.rstrip('/')}/ack/{self.sign(incident_ids, person_id, now)}"


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out
