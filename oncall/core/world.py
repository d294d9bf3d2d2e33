"""What the escalation machine needs to know about the outside at a given instant — the
configuration, whether business hours are open, who a rota has on call — passed in as plain
functions so that tests can ask "what happens at 23:10 on a Saturday" without a clock."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from oncall.core import calendar
from oncall.core.models import Config, Target
from oncall.core.rota import on_call


@dataclass(frozen=True, slots=True)
class World:
    config: Config
    is_open: Callable[[datetime], bool]
    on_call: Callable[[str, datetime], str | None]  # rota name, t -> person id (None: nobody)
    next_open: Callable[[datetime], datetime | None] = lambda _t: None


def make_world(config: Config) -> World:
    """The world of a configuration: its business hours and its rotas."""
    hours = calendar.Hours(config.rules.business_hours, config.rules.shop.timezone)

    def on_call_person(rota: str, t: datetime) -> str | None:
        shift = on_call(config.rotas[rota], t) if rota in config.rotas else None
        return shift.person if shift is not None else None

    return World(
        config=config,
        is_open=hours.is_open,
        on_call=on_call_person,
        next_open=hours.next_open,
    )


def resolve_targets(targets: Sequence[Target], now: datetime, world: World) -> tuple[list[str], list[str]]:
    """Person ids for the targets at `now`, in order, each once; and what the timeline should
    say about targets that resolved to nobody (an empty rota pages `shop.fallback`)."""
    people: list[str] = []
    notes: list[str] = []
    fallback = world.config.rules.shop.fallback

    def one(t: Target) -> str | None:
        if t.kind == "rota":
            if t.name not in world.config.rotas:
                return None
            return world.on_call(t.name, now)
        return t.name if t.name in world.config.people else None

    for target in targets:
        pid = one(target)
        if pid is None:
            known_rota = target.kind == "rota" and target.name in world.config.rotas
            why = "has nobody on call" if known_rota else "is unknown"
            pid = one(fallback) if fallback != target else None
            if pid is None:
                notes.append(f"{target} {why} and the fallback {fallback} has nobody either")
                continue
            notes.append(f"{target} {why}: paging the fallback {fallback} ({world.config.people[pid].name})")
        if pid not in world.config.people:
            notes.append(f"{target} names “{pid}”, who is not in people.toml")
            continue
        if pid not in people:
            people.append(pid)
    return people, notes
