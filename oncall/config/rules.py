"""`escalation_rules.toml` -> `RulesConfig` (SPEC §2.1).

References to other files (`rota:NAME`, `person:ID`) are checked against what the caller
already loaded; pass None to skip a check whose file could not be read (its own error says so).
"""

from __future__ import annotations

import itertools
import re
import string
from collections.abc import Collection, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo

import holidays

from oncall.config.errors import ConfigError, Problems, known_list, suggest
from oncall.config.reader import Table, item, read_toml, type_name
from oncall.config.rotas import local_span
from oncall.config.rule_table import RULE_KEYS, read_rule
from oncall.config.values import parse_language, parse_target, parse_timezone, parse_window
from oncall.core.customer_text import PLACEHOLDERS, base_language
from oncall.core.durations import format_duration
from oncall.core.models import (
    CHANNELS,
    DAYS,
    BusinessHours,
    Maintenance,
    Person,
    Policy,
    PromiseRules,
    RulesConfig,
    Shop,
    Step,
    Target,
    Window,
)

_TEAM_CHANNEL = re.compile(r"slack:(#[\w.-]+|[CG][A-Z0-9]{6,})|telegram:(-?\d+|@\w+)")


_SHOP_KEYS = ("name", "timezone", "language", "response_time", "fallback", "team_channel")


def read_rules(
    path: Path,
    problems: Problems,
    rotas: Collection[str] | None,
    people: Mapping[str, Person] | None,
) -> RulesConfig | None:
    data = read_toml(path, problems, missing="create it or set ONCALL_RULES_FILE")
    if data is None:
        return None
    top = Table(
        data, "", problems, ["shop", "business_hours", "policy", "rule", "message", "maintenance", "promise"]
    )
    refs = _Refs(rotas, people)
    shop = _shop(top, refs)
    tz = shop.timezone if shop is not None else None
    hours = _business_hours(top)
    messages = _messages(top, shop.language if shop is not None else None)
    policies = _policies(top, refs)
    rules = [read_rule(t, policies, messages) for t in top.tables("rule", RULE_KEYS)]
    if not rules and "rule" not in top:
        problems.add(
            "rule", 'no rules (add at least one [[rule]], e.g. match = { hours = "closed" } and a policy)'
        )
    maintenance = [_maintenance(t, tz) for t in top.tables("maintenance", ("from", "to", "note"))]
    promise = _promise(top, shop)
    if (
        shop is None
        or hours is None
        or promise is None
        or None in policies.values()
        or None in rules
        or None in maintenance
    ):
        return None
    return RulesConfig(
        shop=shop,
        business_hours=hours,
        policies=MappingProxyType({k: v for k, v in policies.items() if v is not None}),
        rules=tuple(r for r in rules if r is not None),
        messages=MappingProxyType({k: MappingProxyType(v) for k, v in messages.items()}),
        maintenance=tuple(m for m in maintenance if m is not None),
        promise=promise,
    )


def load_rules(
    path: Path, rotas: Collection[str] | None = None, people: Mapping[str, Person] | None = None
) -> RulesConfig:
    """`escalation_rules.toml` alone; raises ConfigError listing every problem."""
    problems = Problems(path.name)
    config = read_rules(path, problems, rotas, people)
    if problems or config is None:
        raise ConfigError(problems.items)
    return config


class _Refs:
    """What `rota:NAME` and `person:ID` may name."""

    def __init__(self, rotas: Collection[str] | None, people: Mapping[str, Person] | None) -> None:
        self.rotas = rotas
        self.people = people

    def target(self, problems: Problems, where: str, text: str) -> Target | None:
        try:
            target = parse_target(text)
        except ValueError as exc:
            problems.add(where, str(exc))
            return None
        if target.kind == "rota" and self.rotas is not None and target.name not in self.rotas:
            problems.add(
                where,
                f'unknown rota "{target.name}" {known_list(self.rotas, "rota:NAME is rotas/NAME.toml")}',
            )
            return None
        if target.kind == "person" and self.people is not None and target.name not in self.people:
            hint = "person:ID is [person.ID] in rotas/people.toml"
            problems.add(where, f'unknown person "{target.name}" {known_list(self.people, hint)}')
            return None
        return target


# ---------------------------------------------------------------------------------------------
# [shop], [business_hours], [message.*], [[maintenance]]


def _shop(top: Table, refs: _Refs) -> Shop | None:
    t = top.table("shop", _SHOP_KEYS, required="add a [shop] table with name, timezone and fallback")
    if t is None:
        return None
    name = t.text("name", required='the shop name used in pages and customer messages, e.g. "Tienda Ejemplo"')
    tz = t.parsed("timezone", parse_timezone, required='the IANA time zone of the shop, e.g. "Europe/Madrid"')
    language = t.parsed("language", parse_language) if "language" in t else "en"
    response_time = t.duration("response_time") if "response_time" in t else timedelta(hours=2)
    fallback_text = t.text(
        "fallback", required='who is paged when a rota has nobody on call, e.g. "person:owner"'
    )
    fallback = refs.target(t.problems, t.at("fallback"), fallback_text) if fallback_text is not None else None
    team_channel = t.text("team_channel")
    if team_channel is not None and not _TEAM_CHANNEL.fullmatch(team_channel):
        t.report(
            "team_channel", f'"{team_channel}" is not a channel (write "slack:#name" or "telegram:CHAT_ID")'
        )
        team_channel = None
    if response_time is not None and response_time <= timedelta(0):
        t.report("response_time", "must be longer than 0s (what reassurance messages promise)")
        response_time = None
    if name is None or tz is None or language is None or response_time is None or fallback is None:
        return None
    return Shop(name, tz, language, response_time, fallback, team_channel)


def _business_hours(top: Table) -> BusinessHours | None:
    t = top.table("business_hours", (*DAYS, "holidays", "closed"))
    if t is None:
        if "business_hours" in top:
            return None
        return BusinessHours(week=MappingProxyType({}))  # no table: closed all the time
    ok = True
    week: dict[int, tuple[Window, ...]] = {}
    for day_index, day in enumerate(DAYS):
        spans = t.texts(day)
        if spans is None:
            ok = ok and day not in t
            continue
        windows, all_read = t.each_parsed(spans, parse_window)
        ok = ok and all_read
        windows.sort(key=lambda w: w.start)
        for a, b in itertools.pairwise(windows):
            if b.start < a.end:
                t.report(day, f"spans {_span(a)} and {_span(b)} overlap (merge them into one)")
                ok = False
        if windows:
            week[day_index] = tuple(windows)
    country, subdivision = _holidays(t)
    ok = ok and not ("holidays" in t and country is None)
    closed: set[date] = set()
    if "closed" in t:
        value = t.data["closed"]
        if isinstance(value, list):
            for i, entry in enumerate(value):
                closed_day = _a_date(entry)
                if closed_day is None:
                    t.problems.add(item(t.at("closed"), i), f'"{entry}" is not a date (write "YYYY-MM-DD")')
                    ok = False
                else:
                    closed.add(closed_day)
        else:
            t.report("closed", f'must be a list of dates such as ["2026-12-24"], not {type_name(value)}')
            ok = False
    if not ok:
        return None
    return BusinessHours(MappingProxyType(week), country, subdivision, frozenset(closed))


def _span(w: Window) -> str:
    return f"{w.start // 60:02d}:{w.start % 60:02d}-{w.end // 60:02d}:{w.end % 60:02d}"


def _a_date(value: object) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value) if len(value) == 10 else None
        except ValueError:
            return None
    return None


def _holidays(t: Table) -> tuple[str | None, str | None]:
    h = t.table("holidays", ("country", "subdivision"))
    if h is None:
        return None, None
    supported: dict[str, list[str]] = holidays.list_supported_countries()
    country = h.text("country", required='an ISO country code known to the holidays package, e.g. "ES"')
    if country is None:
        return None, None
    if country not in supported:
        # Codes are too short for a spelling guess ("Spain" is not "PAN"): only the case is.
        hint = (
            f'(did you mean "{country.upper()}"?)'
            if country.upper() in supported
            else f"(an ISO 3166 code such as ES, PT, FR, DE, GB or US; {len(supported)} are known)"
        )
        h.report("country", f'unknown country "{country}" {hint}')
        return None, None
    subdivision = h.text("subdivision")
    if subdivision is not None and subdivision not in supported[country]:
        h.report(
            "subdivision",
            f'unknown subdivision "{subdivision}" of {country} {known_list(supported[country])}',
        )
        return None, None
    return country, subdivision


def _messages(top: Table, shop_language: str | None) -> dict[str, dict[str, str]]:
    t = top.table("message", None)  # the names are the owner's: checked one by one below
    out: dict[str, dict[str, str]] = {}
    for name, value in (t.data if t is not None else {}).items():
        where = f"message.{name}"
        if not isinstance(value, dict):
            top.problems.add(
                where, f"must be a table [message.{name}] of language = text, not {type_name(value)}"
            )
            continue
        texts: dict[str, str] = {}
        for lang, template in value.items():
            at = f"{where}.{lang}"
            try:
                parse_language(lang)
            except ValueError as exc:
                top.problems.add(at, str(exc))
                continue
            if not isinstance(template, str):
                top.problems.add(at, f"must be text in quotes, not {type_name(template)}")
                continue
            if _check_template(top.problems, at, template):
                texts[lang] = template
        if shop_language is not None and base_language(shop_language) not in {
            base_language(k) for k in value
        }:
            top.problems.add(where, f'has no "{shop_language}" text (add {shop_language} = "…": the shop '
                                    "language is used for customers of other languages)")  # fmt: skip
        out[name] = texts
    return out


def _check_template(problems: Problems, where: str, template: str) -> bool:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        problems.add(where, f"{exc} (write {{{{ and }}}} for a literal brace)")
        return False
    ok = True
    for f in (f.strip() for f in fields):
        if f not in PLACEHOLDERS:
            problems.add(where, f'unknown placeholder "{{{f}}}" {suggest(f, PLACEHOLDERS)}')
            ok = False
    return ok


def _maintenance(t: Table, tz: ZoneInfo | None) -> Maintenance | None:
    begins, ends = 'when the work begins, e.g. "2026-12-01 02:00"', 'when it ends, e.g. "2026-12-01 04:00"'
    span = local_span(t, tz, "a maintenance window", begins, ends)
    note = t.text("note") or ""
    return Maintenance(*span, note) if span is not None else None


def _promise(top: Table, shop: Shop | None) -> PromiseRules | None:
    """`[promise]`: `remind`, then `escalate`, both before `shop.response_time` (a reminder
    after the deadline would come too late to keep the promise)."""
    if "promise" not in top:
        return PromiseRules()
    t = top.table("promise", ("remind", "escalate"))
    if t is None:
        return None
    remind = t.duration("remind") if "remind" in t else None
    escalate = t.duration("escalate") if "escalate" in t else None
    ok = ("remind" not in t or remind is not None) and ("escalate" not in t or escalate is not None)
    for key, value in (("remind", remind), ("escalate", escalate)):
        if value is None:
            continue
        if value <= timedelta(0):
            t.report(key, "must be longer than 0s (how long after the customer was told)")
            ok = False
        elif shop is not None and value >= shop.response_time:
            limit = format_duration(shop.response_time)
            t.report(
                key,
                f"must be shorter than shop.response_time ({limit}): the promise is broken by then",
            )
            ok = False
    if remind is not None and escalate is not None and escalate <= remind:
        t.report(
            "escalate",
            f"must be later than promise.remind ({format_duration(remind)}): the owner is paged"
            " only after the reminder had its chance",
        )
        ok = False
    return PromiseRules(remind, escalate) if ok else None


# ---------------------------------------------------------------------------------------------
# [[policy]]


def _policies(top: Table, refs: _Refs) -> dict[str, Policy | None]:
    """Policies by name; a policy with problems maps to None so rules naming it stay quiet."""
    out: dict[str, Policy | None] = {}
    for t in top.tables("policy", ("name", "repeat", "step")):
        name = t.text("name", required='how rules refer to this policy, e.g. "weekend"')
        repeat = t.integer("repeat") if "repeat" in t else 0
        if repeat is not None and repeat < 0:
            t.report("repeat", f"must be 0 or more, not {repeat} (how many times the whole chain runs again)")
            repeat = None
        step_tables = t.tables("step", ("notify", "via", "ack_within"))
        if not step_tables and not t.data.get("step"):  # a bad type is reported by tables()
            t.report("step", "missing (add at least one [[policy.step]] with notify, via and ack_within)")
        steps = [_step(s, refs) for s in step_tables]
        if name is None:
            continue
        if name in out:
            t.report(
                "name", f'"{name}" is already the name of another policy (give each policy its own name)'
            )
            continue
        ok = repeat is not None and steps and None not in steps
        out[name] = Policy(name, tuple(s for s in steps if s is not None), repeat or 0) if ok else None
    return out


def _step(t: Table, refs: _Refs) -> Step | None:
    entries = t.texts("notify", required='who is paged, e.g. ["rota:weekend"] or ["person:owner"]')
    targets = [refs.target(t.problems, where, text) for where, text in entries or []]
    if entries is not None and not entries:
        t.report("notify", 'names nobody (list "rota:NAME" or "person:ID" targets)')
    channels = t.texts("via", required=f"the channels of this step, any of {', '.join(CHANNELS)}")
    via: list[str] = []
    ok = True
    for where, channel in channels or []:
        if channel not in CHANNELS:
            t.problems.add(where, f'unknown channel "{channel}" {known_list(CHANNELS)}')
            ok = False
        elif channel not in via:
            via.append(channel)
    if channels is not None and not channels:
        t.report("via", f"lists no channel (use any of {', '.join(CHANNELS)})")
    ack_within = t.duration("ack_within", required='how long to wait for an acknowledgement, e.g. "10m"')
    if ack_within is not None and ack_within <= timedelta(0):
        t.report("ack_within", "must be longer than 0s (how long to wait before the next step)")
        ack_within = None
    if not ok or not entries or None in targets or not via or ack_within is None:
        return None
    return Step(tuple(x for x in targets if x is not None), tuple(via), ack_within)
