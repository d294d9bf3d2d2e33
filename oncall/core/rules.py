"""Rule routing (SPEC §2.1): which rules an event matches, what each one does, and the
incident it groups into.

Pure: the caller passes the time of arrival and a function that says whether business hours
are open at a given instant, so "a ticket at 23:10 on a Saturday" is a plain function call.

Rules are tried in file order and the first match wins unless it says `continue = true`.
`Router` compiles the rules once per configuration (an index by event kind), so that routing an
event against 200 rules costs a few microseconds, not 200 regular-expression checks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from oncall.core.models import Action, Event, Maintenance, Match, Rule, RulesConfig

IsOpen = Callable[[datetime], bool]


@dataclass(frozen=True, slots=True)
class Decision:
    """What one matching rule does with an event.

    `maintenance` is set when the rule would page but a `[[maintenance]]` window covers the
    event: it is stored and listed, and nobody is paged.
    """

    rule: Rule
    action: Action
    group_key: str
    maintenance: Maintenance | None = None

    @property
    def pages(self) -> bool:
        return self.action == "page" and self.maintenance is None


def group_key(rule: Rule, event: Event) -> str:
    """The identity of the incident an event joins: the rule plus its `group_by` values."""
    if not rule.group_by:
        return ""
    return "|".join(f"{name}={event.field_value(name) or ''}" for name in rule.group_by)


def matches(match: Match, event: Event, local_at: datetime, is_open: Callable[[], bool]) -> bool:
    """Whether every key given in `match` holds (`tags`: any of). `local_at` is the arrival
    time in the shop's timezone; `is_open` is asked only when a rule cares about hours."""
    if match.kind is not None and event.kind not in match.kind:
        return False
    if match.source is not None and event.source not in match.source:
        return False
    if match.days is not None and local_at.weekday() not in match.days:
        return False
    if match.severity is not None and not _one_of(event.severity, match.severity):
        return False
    if match.priority is not None and not _one_of(event.ticket.priority, match.priority):
        return False
    if match.amount_at_least is not None and (
        event.order.amount is None or event.order.amount < match.amount_at_least
    ):
        return False
    if match.tags is not None and match.tags.isdisjoint(event.tags):
        return False
    if match.text is not None and match.text.search(event.summary) is None:
        return False
    # Asked last: it is the one check that may look up public holidays.
    return match.hours == "any" or is_open() == (match.hours == "open")


def _one_of(value: str | None, allowed: frozenset[str]) -> bool:
    # Platforms write "Urgent" or "urgent"; owners write either: compare without case.
    if value is None:
        return False
    return value in allowed or value.lower() in allowed or any(a.lower() == value.lower() for a in allowed)


def in_maintenance(windows: Sequence[Maintenance], at: datetime) -> Maintenance | None:
    for window in windows:
        if window.start <= at < window.end:
            return window
    return None


class Router:
    """The rules of one configuration, compiled for fast first-match routing."""

    __slots__ = ("_any_kind", "_by_kind", "_config")

    def __init__(self, config: RulesConfig) -> None:
        self._config = config
        kinds: set[str] = set()
        for rule in config.rules:
            if rule.match.kind is not None:
                kinds |= rule.match.kind
        # For each kind, the rules that can match it, still in file order.
        self._by_kind: dict[str, tuple[Rule, ...]] = {
            kind: tuple(r for r in config.rules if r.match.kind is None or kind in r.match.kind)
            for kind in kinds
        }
        self._any_kind: tuple[Rule, ...] = tuple(r for r in config.rules if r.match.kind is None)

    def route(self, event: Event, at: datetime, is_open: IsOpen) -> list[Decision]:
        """The decisions for `event` arriving at `at` (aware), in file order."""
        shop = self._config.shop
        local_at = at.astimezone(shop.timezone)
        open_cache: list[bool] = []

        def open_now() -> bool:
            if not open_cache:
                open_cache.append(is_open(at))
            return open_cache[0]

        decisions: list[Decision] = []
        for rule in self._by_kind.get(event.kind, self._any_kind):
            if not matches(rule.match, event, local_at, open_now):
                continue
            window = None
            if rule.action == "page":
                window = in_maintenance(self._config.maintenance, at)
            decisions.append(Decision(rule, rule.action, group_key(rule, event), window))
            if not rule.continue_:
                break
        return decisions


_routers: dict[int, tuple[RulesConfig, Router]] = {}


def router_for(config: RulesConfig) -> Router:
    """The compiled router of `config`, built once per configuration object."""
    cached = _routers.get(id(config))
    if cached is not None and cached[0] is config:
        return cached[1]
    router = Router(config)
    if len(_routers) > 8:  # configurations are replaced, rarely: keep the cache tiny
        _routers.clear()
    _routers[id(config)] = (config, router)
    return router


def route(event: Event, config: RulesConfig, at: datetime, is_open: IsOpen) -> list[Decision]:
    """Route `event` arriving at `at` through the rules of `config` (SPEC §2.1)."""
    return router_for(config).route(event, at, is_open)


def cancels(rule: Rule, event: Event) -> bool:
    """Whether `event` is of a kind that cancels this rule's events (`cancel_on`)."""
    return event.kind in rule.cancel_on
