"""`oncall test-page PERSON [--via CHANNEL]`: a real message to one person, to check the
credentials and their contact details end to end. Exit 0 when every channel delivered."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import datetime

from oncall.channels import build_channels
from oncall.channels.base import Channel, Delivery, PageMessage
from oncall.clock import system_clock
from oncall.commands.check import enabled_channels
from oncall.commands.who import load
from oncall.core.models import CHANNELS, Person
from oncall.settings import Settings

# Each provider's name and the setting of its API address, for "could not reach" messages.
PROVIDERS = {
    "telegram": ("Telegram", "telegram_api_url"),
    "slack": ("Slack", "slack_api_url"),
    "sms": ("Twilio", "twilio_api_url"),
    "voice": ("Twilio", "twilio_api_url"),
}
# How the channels report a provider that did not answer at all (no connection, time-out), as
# opposed to one that answered with a refusal.
_NO_ANSWER = (
    "httpx.Connect",
    "httpx.ReadTimeout",
    "TimedOut",
    "timed out",
    "ClientConnectorError",
    "ClientOSError",
    "ServerDisconnectedError",
    "ServerTimeoutError",
)
_PREFIX = re.compile(r"(?:telegram|slack|twilio|sms|voice|[\w.]*[A-Z][\w.]*): ")


def unreachable(channel: str, error: str, settings: Settings) -> str | None:
    """`could not reach Telegram at URL: …` when nothing answered; None for other failures."""
    provider = PROVIDERS.get(channel)
    if provider is None or not any(marker in error for marker in _NO_ANSWER):
        return None
    detail = error
    while m := _PREFIX.match(detail):  # "telegram: NetworkError: httpx.ConnectError: …"
        detail = detail[m.end() :]
    name, setting = provider
    return f"could not reach {name} at {getattr(settings, setting)}: {detail}"


def message(person: Person, channel: str, shop: str, public_url: str, now: datetime) -> PageMessage:
    text = f"{shop}: test page for {person.name} via {channel} at {now:%H:%M} UTC. Nothing to do."
    return PageMessage(
        key=f"test:{person.id}:{channel}:{now.isoformat()}",
        person=person,
        channel=channel,
        incident_ids=(0,),
        title=text,
        body=text + "\nThe buttons of a real page acknowledge, resolve or snooze its incident.",
        sms=f"{text} Reply codes come with real pages.",
        ack_url="",
    )


async def send_all(channels: dict[str, Channel], messages: list[PageMessage]) -> list[Delivery]:
    try:
        return list(await asyncio.gather(*(channels[m.channel].send(m) for m in messages)))
    finally:
        for ch in channels.values():
            close = getattr(ch, "aclose", None)
            if close is not None:
                await close()


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    config = load(settings)
    if config is None:
        return 1
    person = config.people.get(args.person)
    if person is None:
        known = ", ".join(sorted(config.people)) or "none"
        print(f"error: unknown person {args.person!r} (known: {known})", file=sys.stderr)
        return 1
    if args.via is not None and args.via not in CHANNELS:
        print(f"error: unknown channel {args.via!r} (known: {', '.join(CHANNELS)})", file=sys.stderr)
        return 2
    channels = build_channels(settings)
    missing = enabled_channels(settings)
    # A phone call only when asked for: a check of the credentials should not ring at night.
    wanted = [args.via] if args.via else [c for c in CHANNELS if c != "voice" and person.has(c)]
    problems = [c for c in wanted if not person.has(c) or not channels[c].configured()]
    for c in problems:
        if not person.has(c):
            why = f"{person.name} has no {c} details"
        else:
            why = f"{c} has no credentials (set {', '.join(missing.get(c) or ['its settings'])})"
        print(f"error: {c}: {why}", file=sys.stderr)
    todo = [c for c in wanted if c not in problems]
    if not todo:
        if not wanted:
            none = "has no contact details for telegram, slack, sms or voice"
            print(f"error: {person.name} {none}", file=sys.stderr)
        return 1
    now = system_clock()
    shop = config.rules.shop.name
    messages = [message(person, c, shop, settings.public_url, now) for c in todo]
    results = asyncio.run(send_all(channels, messages))
    for m, r in zip(messages, results, strict=True):
        if r.ok:
            print(f"{m.channel}: sent to {person.name} ({r.ref})")
        else:
            error = r.error or "not delivered"
            error = unreachable(m.channel, error, settings) or error.removeprefix(f"{m.channel}: ")
            print(f"error: {m.channel}: {error}", file=sys.stderr)
    return 0 if not problems and all(r.ok for r in results) else 1
