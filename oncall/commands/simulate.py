"""`oncall simulate EVENT.json [--source SOURCE] [--at WHEN]`: a dry run that sends nothing.

It routes the event through the rules at WHEN, then runs the escalation core forward as if
nobody acknowledged, and prints: the matching rule, the timeline of pages (who, channel, when)
and the customer message text.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from oncall.clock import system_clock
from oncall.commands import when as when_module
from oncall.commands.who import load
from oncall.core import pagetext
from oncall.core.customer_text import contact_of, customer_message
from oncall.core.dispatch import Drop, InMaintenance, PostToTeam, RouteStep, escalate, plan
from oncall.core.incident import Incident, Page, World, make_world, run_forward
from oncall.core.models import Config, Event
from oncall.settings import Settings


def parse_when(text: str | None, config: Config) -> datetime:
    """WHEN as `oncall who --at` reads it (`oncall.commands.when`); None = now."""
    if text is None:
        return system_clock()
    return when_module.parse_when(text, config.rules.shop.timezone)


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    config = load(settings)
    if config is None:
        return 1
    try:
        when = parse_when(args.at, config)
    except ValueError as exc:
        print(f"error: --at: {exc}", file=sys.stderr)
        return 1
    try:
        ev = read_event(Path(args.event), args.source, when)
    except (OSError, ValueError) as exc:
        print(f"error: {args.event}: {exc}", file=sys.stderr)
        return 1
    print(simulate(ev, config, when))
    return 0


def read_event(path: Path, source: str | None, when: datetime) -> Event:
    raw = path.read_bytes()
    payload: Any = json.loads(raw)
    from oncall.sources import SOURCES

    name = source or "generic"
    if name not in SOURCES:
        raise ValueError(f"unknown source {name!r} (known: {', '.join(SOURCES)})")
    from oncall.sources import WebhookError

    try:
        ev = SOURCES[name].normalise(payload, _headers(name, payload), received_at=when, body=raw)
    except WebhookError as exc:
        raise ValueError(str(exc)) from exc
    # The dry run happens at WHEN: the event's own timestamp would make "since …" disagree.
    return replace(ev, id=1, received_at=when, occurred_at=None)


def _headers(source: str, payload: Any) -> dict[str, str]:
    """What the platform would have sent beside the body, when the payload alone does not say:
    Shopify names its topic only in a header."""
    if source == "shopify" and isinstance(payload, dict):
        if "kind" in payload and "status" in payload:
            topic = "order_transactions/create"
        elif "order_id" in payload and "reason" in payload:  # a dispute names its order and reason
            topic = "disputes/create"
        else:
            topic = "orders/create"
        return {"x-shopify-topic": topic}
    return {}


def simulate(ev: Event, config: Config, when: datetime) -> str:
    """The report `oncall simulate` prints."""
    world = make_world(config)
    tz = config.rules.shop.timezone
    state = "open" if world.is_open(when) else "closed"
    lines = [f"Event: {ev.kind} from {ev.source} at {_local(when, world)} ({tz.key}); business hours {state}"]
    if ev.summary:
        lines.append(f"  {ev.summary}")
    steps = plan(ev, world, when)
    if not steps:
        lines.append("Rule: none matches: the event is stored and nothing else happens")
    for s in steps:
        lines += ["", *_step(s, ev, world, when)]
    return "\n".join(lines)


def _step(s: RouteStep, ev: Event, world: World, when: datetime) -> list[str]:
    rule, shop = s.rule, world.config.rules.shop
    head = f"Rule: “{rule.name}” → {rule.action}"
    if isinstance(s, Drop):
        return [head, "  dropped: stored, nobody is told"]
    if isinstance(s, PostToTeam):
        where = s.target or "the log (no shop.team_channel)"
        return [head, f"  posted to {where}:", "  " + s.text]
    if isinstance(s, InMaintenance):
        note = f" ({s.window.note})" if s.window.note else ""
        return [
            head,
            f"  during a maintenance window until {_local(s.window.end, world)}{note}: nobody is paged",
        ]
    done = escalate(s, None, 1, ev, when, world)
    out = done.outcome
    if s.action == "defer":
        nxt = done.digest_at
        lines = [head, f"  deferred: listed in the digest posted to {shop.team_channel or 'the log'}"]
        lines.append(
            f"  when business hours next open: {_local(nxt, world) if nxt else 'never (no business hours)'}"
        )
        return lines + _customer(rule.reassure, ev, world, when)
    bits = [f"policy {rule.policy}", f"hold {_dur(rule.hold.total_seconds())}"]
    if rule.group_by:
        bits.append("grouped by " + ", ".join(rule.group_by))
    lines = [f"{head} ({'; '.join(bits)})", "", "Pages, if nobody acknowledges:"]
    steps = [(when, out), *run_forward(out.incident, world)]
    first: tuple[Incident, Page, datetime] | None = None
    seen = 0
    for at, o in steps:
        new = o.incident.timeline[seen:]
        seen = len(o.incident.timeline)
        for entry in new:
            if entry.what.startswith("step ") or "joined" in entry.what:
                continue
            lines.append(f"  {_local(entry.at, world)}  {entry.what}")
        for a in o.actions:
            if isinstance(a, Page):
                person = world.config.people[a.person]
                lines.append(
                    f"  {_local(at, world)}  step {a.step}, round {a.round}: {person.name} by {a.channel}"
                )
                if first is None:
                    first = (o.incident, a, at)
    if first is not None:
        inc, page, at = first
        text = pagetext.page_text(inc, shop, at, "{ONCALL_PUBLIC_URL}/ack/…")
        lines += ["", f"The first page ({page.channel}):", *("  " + x for x in text.body.splitlines())]
        lines += ["", "By SMS:", "  " + text.sms]
    triggered_at = next((at for at, o in steps if o.incident.state == "triggered"), None)
    if rule.reassure and triggered_at is not None and not world.is_open(triggered_at):
        lines += _customer(rule.reassure, ev, world, triggered_at)
    elif rule.reassure:
        lines += ["", "Customer message: none (business hours are open, or nobody is paged)"]
    return lines


def _customer(message: str | None, ev: Event, world: World, at: datetime) -> list[str]:
    if not message:
        return []
    rules = world.config.rules
    contact = contact_of(ev)
    rendered = customer_message(rules, message, contact, world.next_open(at), at)
    if rendered is None:
        return ["", f"Customer message “{message}”: no text for it in escalation_rules.toml"]
    to = ev.customer.email or ev.customer.phone or (f"ticket {ev.ticket.id}" if ev.ticket.id else "nobody")
    return ["", f"Customer message “{message}” ({rendered.language}, to {to}):", "  " + rendered.text]


def _local(t: datetime, world: World) -> str:
    return t.astimezone(world.config.rules.shop.timezone).strftime("%a %d %b %H:%M")


def _dur(seconds: float) -> str:
    s = int(seconds)
    if s % 3600 == 0 and s:
        return f"{s // 3600}h"
    if s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"
