"""`oncall trigger SOURCE KIND [--url URL]`: posts a realistic, correctly signed sample webhook
to a running server with the configured secret, like `stripe trigger`."""

from __future__ import annotations

import argparse
import sys

import httpx

from oncall.clock import system_clock
from oncall.settings import Settings
from oncall.sources import SOURCES
from oncall.sources.samples import SAMPLES, sample


def run(args: argparse.Namespace) -> int:
    source, kind = args.source.lower(), args.kind.lower()
    if source not in SAMPLES:
        print(f"error: unknown source {args.source!r} (known: {', '.join(SAMPLES)})", file=sys.stderr)
        return 1
    if kind not in SAMPLES[source]:
        known = ", ".join(SAMPLES[source])
        print(f"error: no {source} sample of kind {args.kind!r} (known: {known})", file=sys.stderr)
        return 1
    settings = Settings()
    secrets = settings.secrets_for(source)
    if not secrets:
        name = "ONCALL_FRESHDESK_TOKEN" if source == "freshdesk" else f"ONCALL_{source.upper()}_SECRET"
        print(f"error: {name} is not set; the server would refuse an unsigned webhook", file=sys.stderr)
        return 1
    now = system_clock()
    body, extra = sample(source, kind, now)
    headers = SOURCES[source].sign(body, secrets[0], now) | extra
    url = f"{(args.url or settings.public_url).rstrip('/')}/webhooks/{source}"
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=10.0)
    except httpx.HTTPError as exc:
        print(f"error: cannot post to {url}: {exc}", file=sys.stderr)
        return 1
    print(f"POST {url} ({source} {kind}) -> {response.status_code} {response.text}")
    return 0 if response.is_success else 1
