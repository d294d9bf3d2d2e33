"""`load_config`: every file the owner edits, loaded and cross-checked in one pass."""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo

from oncall.config.errors import ConfigError, Problems
from oncall.config.rotas import PEOPLE_FILE, label_for, read_people, read_rota, rota_files
from oncall.config.rules import read_rules
from oncall.config.values import parse_timezone
from oncall.core.models import Config, Person, Rota


def load_config(rules_file: Path, rotas_dir: Path) -> Config:
    """The configuration in `rules_file` and `rotas_dir`, or ConfigError with every problem of
    every file, each as `FILE: key.path: what is wrong (what to do)`. Problems of the rules
    file come first, then people.toml, then the rotas in name order."""
    found: list[str] = []
    people: dict[str, Person] | None = None
    files: dict[str, Path] | None = None
    if rotas_dir.is_dir():
        files = rota_files(rotas_dir)
        people_path = rotas_dir / PEOPLE_FILE
        people_problems = Problems(label_for(rotas_dir, people_path))
        people = read_people(people_path, people_problems)
        found += people_problems.items
    else:
        found.append(
            f"{rotas_dir.name or rotas_dir}: directory not found (create it with people.toml and one "
            "NAME.toml per rota, or set ONCALL_ROTAS_DIR)"
        )

    rules_problems = Problems(rules_file.name)
    rules = read_rules(rules_file, rules_problems, None if files is None else files.keys(), people)

    # A rota file may leave out its timezone: the shop's applies.
    shop_tz = rules.shop.timezone if rules is not None else _peek_shop_timezone(rules_file)
    rotas: dict[str, Rota] = {}
    for name, path in (files or {}).items():
        problems = Problems(label_for(rotas_dir, path))
        rota = read_rota(path, name, problems, people, shop_tz)
        found += problems.items
        if rota is not None:
            rotas[name] = rota

    found = rules_problems.items + found
    if found or rules is None or people is None:
        # Every None above comes with a reported problem; never fail without saying why.
        raise ConfigError(
            found or [f"{rules_file.name}: could not be loaded (no details: please report this)"]
        )
    return Config(rules=rules, people=MappingProxyType(people), rotas=MappingProxyType(rotas))


def _peek_shop_timezone(rules_file: Path) -> ZoneInfo | None:
    """shop.timezone when the rules file has other problems (they are reported elsewhere)."""
    try:
        with rules_file.open("rb") as f:
            shop = tomllib.load(f).get("shop")
        text = shop.get("timezone") if isinstance(shop, dict) else None
        return parse_timezone(text) if isinstance(text, str) else None
    except (OSError, ValueError):
        return None
