"""`oncall check [--weeks N]`: validate every file, then warn about what would go wrong.

Errors (the files cannot be used) go to stderr as `error: …`, exit 1. Otherwise a short summary
goes to stdout and warnings to stderr as `warning: …`, exit 0:

- closed hours in the next N weeks when a rota a policy pages has nobody on call;
- rota overrides that change nothing (the person is on call for their whole span anyway);
- people a policy pages by a channel they have no details for;
- channels a policy uses that have no credentials (their pages go to the console log);
- rules that post to the team channel when there is none;
- ONCALL_* names in the environment or .env that are no setting (a typo is otherwise ignored);
- an ONCALL_PUBLIC_URL that phones cannot reach while a channel is on (ack links, Twilio).

The warning functions are pure (`now` is an argument); `run` is the only place that reads the
clock, the environment and the files.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from oncall.clock import system_clock
from oncall.commands.who import load
from oncall.config.rotas import PEOPLE_FILE
from oncall.core.calendar import closed_spans
from oncall.core.customer_text import check_messages
from oncall.core.models import Config, Rota, Target
from oncall.core.rota import gaps, shifts
from oncall.settings import Settings

DASH = "\N{EN DASH}"  # between the ends of a span, as the SPEC writes them

# What `Person` lacks, in the owner's words, per channel.
_DETAIL = {"telegram": "telegram id", "slack": "slack member id", "sms": "phone", "voice": "phone"}


def run(args: argparse.Namespace) -> int:
    weeks: int = args.weeks
    if weeks < 0:
        print("error: --weeks must be 0 or more", file=sys.stderr)
        return 2
    settings = Settings()
    config = load(settings)
    if config is None:
        return 1
    errors = check_messages(config.rules, settings.rules_file.name)
    if errors:
        for problem in errors:
            print(f"error: {problem}", file=sys.stderr)
        return 1

    people_label = f"{settings.rotas_dir.name}/{PEOPLE_FILE}" if settings.rotas_dir.name else PEOPLE_FILE
    print(summary(config))
    found = [
        *gap_warnings(config, system_clock(), weeks),
        *override_warnings(config, system_clock(), settings.rotas_dir.name),
        *contact_warnings(config, people_label),
        *channel_warnings(config, enabled_channels(settings)),
        *team_channel_warnings(config),
        *setting_warnings(_given_settings()),
        *public_url_warnings(settings.public_url, enabled_channels(settings)),
    ]
    for warning in found:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def summary(config: Config) -> str:
    shop = config.rules.shop
    lines = [
        f"{shop.name} ({shop.timezone.key}): {len(config.rules.rules)} rules, "
        f"{len(config.rules.policies)} policies ({', '.join(config.rules.policies)}), "
        f"{len(config.people)} people, {len(config.rotas)} rotas",
    ]
    for name, rota in sorted(config.rotas.items()):
        lines.append(f"  rota {name}: {', '.join(rota_people(rota)) or 'nobody'}")
    return "\n".join(lines)


def rota_people(rota: Rota) -> list[str]:
    """Everyone a rota can put on call, layers first, in order of appearance."""
    seen: dict[str, None] = {}
    for layer in rota.layers:
        seen.update(dict.fromkeys(layer.members))
    seen.update(dict.fromkeys(o.who for o in rota.overrides))
    return list(seen)


def paged_rotas(config: Config) -> list[str]:
    """The rotas a page can go to: policy targets and the fallback."""
    targets: list[Target] = [config.rules.shop.fallback]
    for policy in config.rules.policies.values():
        for step in policy.steps:
            targets.extend(step.notify)
    return sorted({t.name for t in targets if t.kind == "rota" and t.name in config.rotas})


def gap_warnings(config: Config, now: datetime, weeks: int) -> list[str]:
    """`rota weekend: nobody on call Sat 2026-11-28 09:00 to 18:00 (shop closed)` (an en dash, not
    "to"), for each
    closed span of the next `weeks` weeks that a paged rota leaves uncovered."""
    shop_tz = config.rules.shop.timezone
    end = now + timedelta(weeks=weeks)
    closed = closed_spans(config.rules.business_hours, shop_tz, now, end)
    out: list[str] = []
    for name in paged_rotas(config):
        for a, b in intersect(closed, gaps(config.rotas[name], now, end)):
            out.append(f"rota {name}: nobody on call {format_span(a, b, shop_tz)} (shop closed)")
    return out


def override_warnings(config: Config, now: datetime, rotas_dir: str = "rotas") -> list[str]:
    """`rotas/weekend.toml: override[1]: luis is on call then anyway; the override changes
    nothing`, for each override not yet over whose person the rota without it (its layers and
    other overrides) already puts on call for the override's whole span, e.g. a swap written
    on the wrong weekend."""
    out: list[str] = []
    for name, rota in sorted(config.rotas.items()):
        label = f"{rotas_dir}/{name}.toml" if rotas_dir else f"{name}.toml"
        for i, o in enumerate(rota.overrides):
            if o.end <= now:
                continue
            without = replace(rota, overrides=rota.overrides[:i] + rota.overrides[i + 1 :])
            if not gaps(without, o.start, o.end) and all(
                s.person == o.who for s in shifts(without, o.start, o.end)
            ):
                what = f"{o.who} is on call then anyway; the override changes nothing"
                out.append(f"{label}: override[{i + 1}]: {what}")
    return out


def intersect(
    xs: Iterable[tuple[datetime, datetime]], ys: Iterable[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """The overlaps of two sorted lists of disjoint [start, end) spans."""
    xs, ys = list(xs), list(ys)
    out: list[tuple[datetime, datetime]] = []
    i = j = 0
    while i < len(xs) and j < len(ys):
        a, b = max(xs[i][0], ys[j][0]), min(xs[i][1], ys[j][1])
        if a < b:
            out.append((a, b))
        if xs[i][1] <= ys[j][1]:
            i += 1
        else:
            j += 1
    return out


def format_span(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """`Sat 2026-11-28 09:00 DASH 18:00`, or with both dates when it crosses midnight; an end at
    midnight is written `24:00` of the day before."""
    a, b = start.astimezone(tz), end.astimezone(tz)
    first = f"{a:%a %Y-%m-%d %H:%M}"
    if b.date() == a.date():
        return f"{first} {DASH} {b:%H:%M}"
    if b.date() == a.date() + timedelta(days=1) and (b.hour, b.minute) == (0, 0):
        return f"{first} {DASH} 24:00"
    return f"{first} {DASH} {b:%a %Y-%m-%d %H:%M}"


def contact_warnings(config: Config, people_label: str = f"rotas/{PEOPLE_FILE}") -> list[str]:
    """`policy weekend step 2 pages luis by sms but rotas/people.toml has no phone for luis`."""
    out: dict[str, None] = {}  # ordered set: two targets may name the same person
    for policy in config.rules.policies.values():
        for number, step in enumerate(policy.steps, start=1):
            for pid in _step_people(config, step.notify):
                person = config.people[pid]
                for channel in step.via:
                    if not person.has(channel):
                        detail = _DETAIL.get(channel, channel)
                        out[
                            f"policy {policy.name} step {number} pages {pid} by {channel} but "
                            f"{people_label} has no {detail} for {pid}"
                        ] = None
    return list(out)


def _step_people(config: Config, targets: Iterable[Target]) -> list[str]:
    found: dict[str, None] = {}
    for target in targets:
        if target.kind == "person":
            found[target.name] = None
        elif target.name in config.rotas:
            found.update(dict.fromkeys(rota_people(config.rotas[target.name])))
    return [pid for pid in found if pid in config.people]


def enabled_channels(settings: Settings) -> dict[str, list[str]]:
    """Channel -> the settings it still lacks (empty when it is on)."""
    needs: Mapping[str, Mapping[str, object]] = {
        "telegram": {"ONCALL_TELEGRAM_BOT_TOKEN": settings.telegram_bot_token},
        "slack": {"ONCALL_SLACK_BOT_TOKEN": settings.slack_bot_token},
        "sms": {
            "ONCALL_TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
            "ONCALL_TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
            "ONCALL_TWILIO_FROM": settings.twilio_from,
        },
        "voice": {
            "ONCALL_TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
            "ONCALL_TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
            # A WhatsApp sender cannot place a call: then the caller id must be set on its own.
            ("ONCALL_TWILIO_VOICE_FROM" if settings.twilio_from else "ONCALL_TWILIO_FROM"): (
                settings.voice_from
            ),
        },
    }
    return {channel: [k for k, v in env.items() if not v] for channel, env in needs.items()}


def channel_warnings(config: Config, missing: Mapping[str, list[str]]) -> list[str]:
    """`channel sms is off (set ONCALL_TWILIO_…): its pages go to the console log`, for each
    channel a policy or the team channel uses."""
    used: dict[str, None] = {}
    for policy in config.rules.policies.values():
        for step in policy.steps:
            used.update(dict.fromkeys(step.via))
    team = config.rules.shop.team_channel
    if team is not None:
        used[team.partition(":")[0]] = None
    return [
        f"channel {channel} is off (set {', '.join(missing[channel])}): its messages go to the console log"
        for channel in used
        if missing.get(channel)
    ]


def team_channel_warnings(config: Config) -> list[str]:
    if config.rules.shop.team_channel is not None:
        return []
    return [
        f'rule "{rule.name}" posts to the team channel but shop.team_channel is not set '
        "(its posts go to the console log)"
        for rule in config.rules.rules
        if rule.action == "post"
    ]


def _given_settings() -> dict[str, str]:
    """Every ONCALL_* name given, and where: the environment, or the .env file Settings reads."""
    from dotenv import dotenv_values

    env_file = Settings.model_config.get("env_file")
    given = {}
    if isinstance(env_file, str) and Path(env_file).is_file():
        given = {k: env_file for k in dotenv_values(env_file) if k.upper().startswith("ONCALL_")}
    given.update({k: "environment" for k in os.environ if k.upper().startswith("ONCALL_")})
    return given


def setting_warnings(given: Mapping[str, str]) -> list[str]:
    """`ONCALL_TWILIO_SID (in .env) is not a setting of oncall (did you mean ONCALL_TWILIO_ACCOUNT_SID?)`:
    a mistyped name is otherwise ignored without a word, like an unknown key in a file would be."""
    known = [name.upper() for name in Settings.model_fields]
    out = []
    for name, where in sorted(given.items()):
        bare = name.upper().removeprefix("ONCALL_")
        if bare in known:
            continue
        close = difflib.get_close_matches(bare, known, n=1, cutoff=0.6)
        hint = f"did you mean ONCALL_{close[0]}?" if close else "see the settings in the README"
        out.append(f"{name} (in {where}) is not a setting of oncall ({hint})")
    return out


def public_url_warnings(public_url: str, missing: Mapping[str, list[str]]) -> list[str]:
    """ONCALL_PUBLIC_URL is in every page (the ack link) and is what Twilio signs replies
    against: one that phones cannot reach breaks both without any other sign."""
    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [
            f"ONCALL_PUBLIC_URL {public_url!r} is not an http(s) URL: the ack links in pages will not open"
        ]
    if any(not lacking for lacking in missing.values()) and (
        parts.hostname == "localhost" or parts.hostname.startswith("127.") or parts.hostname == "::1"
    ):
        return [
            f"ONCALL_PUBLIC_URL is {public_url}: the ack links in pages will not open on a phone and "
            "Twilio's signed SMS replies will be refused (set it to the address the internet reaches)"
        ]
    return []
