"""Webhook sources: one module per platform, each with

    verify(headers, body, secrets, now)      raises SignatureError unless genuine
    normalise(payload, headers, received_at=, body=) -> Event
    sign(body, secret, now) -> headers       what the platform would send (trigger, bench)

`headers` is a mapping with lower-case names. `SOURCES[name]` gives the module.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from oncall.core.models import Event
from oncall.sources import freshdesk, generic, shopify, stripe, woocommerce, zendesk
from oncall.sources._common import PayloadError, SignatureError, WebhookError


class Source(Protocol):
    NAME: str

    def verify(
        self, headers: Mapping[str, str], body: bytes, secrets: list[bytes], now: datetime
    ) -> None: ...

    def normalise(
        self,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        *,
        received_at: datetime,
        body: bytes = b"",
    ) -> Event: ...

    def sign(self, body: bytes, secret: bytes, now: datetime) -> dict[str, str]: ...


SOURCES: Mapping[str, Source] = {
    "shopify": shopify,
    "stripe": stripe,
    "woocommerce": woocommerce,
    "zendesk": zendesk,
    "freshdesk": freshdesk,
    "generic": generic,
}


def normalise(
    source: str,
    payload: Any,
    headers: Mapping[str, str] | None = None,
    *,
    received_at: datetime,
    body: bytes = b"",
) -> Event:
    """The event a payload of `source` becomes (used by `oncall simulate --source`)."""
    return SOURCES[source].normalise(payload, headers, received_at=received_at, body=body)


__all__ = ["SOURCES", "PayloadError", "SignatureError", "Source", "WebhookError", "normalise"]
