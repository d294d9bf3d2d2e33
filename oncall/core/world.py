"""What the escalation machine needs to know about the outside at a given instant — the
configuration, whether business hours are open, who a rota has on call — passed in as plain
functions so that tests can ask "what happens at 23:10 on a Saturday" without a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from oncall.core import calendar
from oncall.core.models import Config
from oncall.core.rota import on_call


@dataclass(frozen=True, slots=True)
class World:
    config: Config
    is_open: Callable[[datetime], bool]
    on_call: Callable[[str, datetime], str | None]  # rota name, t -> person id (None: nobody)
    next_open: Callable[[datetime], datetime | None] = lambda _t: None


def make_world(config: Config) -> World:
    """The world of a configuration: its business hours and its rotas."""
    hours, tz = config.rules.business_hours, config.rules.shop.timezone

    def on_call_person(rota: str, t: datetime) -> str | None:
        shift = on_call(config.rotas[rota], t) if rota in config.rotas else None
        return shift.person if shift is not None else None

    return World(
        config=config,
        is_open=lambda t: calendar.is_open(hours, tz, t),
        on_call=on_call_person,
        next_open=lambda t: calendar.next_open(hours, tz, t),
    )
