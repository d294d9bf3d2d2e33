"""One `[[rule]]` table of `escalation_rules.toml` -> `Rule` (SPEC §2.1): its `match` table,
its action and policy, and the names it may use (event kinds, sources, event fields)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import get_args

from oncall.config.errors import known_list, suggest
from oncall.config.reader import Table
from oncall.config.values import parse_day
from oncall.core.models import (
    EVENT_KINDS,
    SOURCES,
    Action,
    Customer,
    Event,
    Hours,
    Match,
    Order,
    Policy,
    Rule,
    Ticket,
)

ACTIONS: tuple[str, ...] = get_args(Action)
HOURS: tuple[str, ...] = get_args(Hours)


def _group_fields() -> tuple[str, ...]:
    """The event fields `group_by` may name: what `Event.field_value` understands."""
    names = ["customer", "order", "ticket"]  # its aliases
    for f in dataclasses.fields(Event):
        if f.name in ("id", "dedup_key", "received_at", "occurred_at", "tags"):
            continue  # unique per event or not a single value: grouping by them groups nothing
        if f.name in ("customer", "order", "ticket"):
            sub = {"customer": Customer, "order": Order, "ticket": Ticket}[f.name]
            names += [f"{f.name}.{g.name}" for g in dataclasses.fields(sub)]
        else:
            names.append(f.name)
    return tuple(names)


GROUP_FIELDS = _group_fields()
RULE_KEYS = ("name", "match", "action", "policy", "hold", "group_by", "threshold", "cancel_on", "reassure",
             "auto_resolve", "continue")  # fmt: skip
_MATCH_KEYS = ("source", "kind", "hours", "days", "severity", "priority", "amount_at_least", "tags", "text")


def read_rule(t: Table, policies: Mapping[str, Policy | None], messages: Mapping[str, object]) -> Rule | None:
    """One `[[rule]]` table; None after a problem (each one reported)."""
    name = t.text("name") or t.path  # "rule[3]": what the owner would call an unnamed rule
    match = _match(t)
    ok = match is not None
    policy = t.text("policy")
    if policy is not None and policy not in policies:
        t.report("policy", f'unknown policy "{policy}" {known_list(policies)}')
        ok = False
    action = t.text("action")
    if action is not None and action not in ACTIONS:
        t.report("action", f'unknown action "{action}" {known_list(ACTIONS)}')
        ok = False
    elif action is None and "action" not in t:
        if "policy" in t:
            action = "page"
        else:
            t.report("action", "missing (set a policy to page someone, or action = post, defer or drop)")
            ok = False
    elif action == "page" and "policy" not in t:
        t.report("policy", 'missing (action = "page" needs a policy: who to page)')
        ok = False
    hold = t.duration("hold") if "hold" in t else timedelta(0)
    group_by = _names(t, "group_by", GROUP_FIELDS, "event field")
    threshold = t.integer("threshold") if "threshold" in t else 1
    if threshold is not None and threshold < 1:
        t.report("threshold", f"must be 1 or more, not {threshold} (how many events it takes to page)")
        threshold = None
    cancel_on = _names(t, "cancel_on", EVENT_KINDS, "event kind")
    reassure = t.text("reassure")
    if reassure is not None and reassure not in messages:
        t.report(
            "reassure",
            f'unknown message "{reassure}" {known_list(messages, f"add a [message.{reassure}] table")}',
        )
        ok = False
    auto_resolve = t.flag("auto_resolve") if "auto_resolve" in t else False
    continue_ = t.flag("continue") if "continue" in t else False
    values = (match, hold, group_by, threshold, cancel_on, auto_resolve, continue_, action)
    if not ok or any(v is None for v in values):
        return None
    assert match is not None and hold is not None and group_by is not None and threshold is not None
    assert cancel_on is not None and auto_resolve is not None and continue_ is not None
    return Rule(
        name=name,
        match=match,
        action=action,  # type: ignore[arg-type]  # checked against ACTIONS above
        policy=policy,
        hold=hold,
        group_by=group_by,
        threshold=threshold,
        cancel_on=cancel_on,
        reassure=reassure,
        auto_resolve=auto_resolve,
        continue_=continue_,
    )


def _names(t: Table, key: str, known: tuple[str, ...], what: str) -> tuple[str, ...] | None:
    """A list of names each of which must be in `known`; None after a problem."""
    entries = t.texts(key)
    if entries is None:
        return None if key in t else ()
    ok = True
    for where, value in entries:
        if value not in known:
            t.problems.add(where, f'unknown {what} "{value}" {suggest(value, known)}')
            ok = False
    return tuple(v for _, v in entries) if ok else None


def _match(rule: Table) -> Match | None:
    t = rule.table("match", _MATCH_KEYS)
    if t is None:
        return None if "match" in rule else Match()  # no match table: every event
    ok = True

    def names(key: str, known: tuple[str, ...] | None, what: str) -> frozenset[str] | None:
        nonlocal ok
        if known is None:
            entries = t.texts(key)
            ok = ok and not (entries is None and key in t)
            return None if entries is None else frozenset(v for _, v in entries)
        got = _names(t, key, known, what)
        ok = ok and not (got is None and key in t)
        return None if got is None or key not in t else frozenset(got)

    source = names("source", SOURCES, "source")
    kind = names("kind", EVENT_KINDS, "event kind")
    hours = t.text("hours") if "hours" in t else "any"
    if hours is not None and hours not in HOURS:
        t.report("hours", f'unknown hours "{hours}" {known_list(HOURS)}')
        hours = None
    ok = ok and hours is not None
    days: frozenset[int] | None = None
    day_entries = t.texts("days")
    if day_entries is not None:
        parsed, all_read = t.each_parsed(day_entries, parse_day)
        ok = ok and all_read
        days = frozenset(parsed)
    elif "days" in t:
        ok = False
    severity = names("severity", None, "")
    priority = names("priority", None, "")
    amount = t.number("amount_at_least")
    ok = ok and not (amount is None and "amount_at_least" in t)
    tags = names("tags", None, "")
    text: re.Pattern[str] | None = None
    pattern = t.text("text")
    if pattern is not None:
        try:
            text = re.compile(pattern)
        except re.error as exc:
            t.report("text", f'"{pattern}" is not a regular expression: {exc} (check brackets and escapes)')
            ok = False
    elif "text" in t:
        ok = False
    if not ok:
        return None
    return Match(
        source=source,
        kind=kind,
        hours=hours,  # type: ignore[arg-type]  # checked against HOURS above
        days=days,
        severity=severity,
        priority=priority,
        amount_at_least=amount,
        tags=tags,
        text=text,
    )
