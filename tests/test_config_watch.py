"""A running server picks up edits to its files, and a bad edit never replaces a good config."""

from __future__ import annotations

import os
from pathlib import Path

from oncall.config import ConfigWatcher, load_config
from oncall.core.models import Config


def write(path: Path, text: str) -> None:
    """Write and move the mtime forward, as a later save would, even on coarse-mtime filesystems."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    write(path, text.replace(old, new, 1))


class CountingLoad:
    """The real loader, counting how often the watcher parses the files."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, rules_file: Path, rotas_dir: Path) -> Config:
        self.calls += 1
        return load_config(rules_file, rotas_dir)


def watcher_for(shop_dir: Path) -> tuple[ConfigWatcher, CountingLoad]:
    load = CountingLoad()
    return ConfigWatcher(shop_dir / "escalation_rules.toml", shop_dir / "rotas", load), load


class TestConfigWatcher:
    def test_first_poll_loads_then_nothing_changes(self, shop_dir: Path) -> None:
        watcher, load = watcher_for(shop_dir)
        first = watcher.poll()
        assert first is not None and first.ok and first.config is not None
        assert first.config.rules.shop.name == "Tienda Ejemplo"
        assert watcher.ok
        assert watcher.poll() is None
        assert watcher.poll() is None
        assert load.calls == 1  # unchanged files are not parsed again

    def test_good_edit_is_picked_up(self, shop_dir: Path) -> None:
        watcher, _ = watcher_for(shop_dir)
        watcher.poll()
        replace(shop_dir / "escalation_rules.toml", 'name = "Tienda Ejemplo"', 'name = "Tienda Nueva"')
        change = watcher.poll()
        assert change is not None and change.ok
        assert change.config is not None and change.config.rules.shop.name == "Tienda Nueva"
        assert watcher.config is change.config

    def test_broken_edit_keeps_the_last_good_config_and_says_why(self, shop_dir: Path) -> None:
        watcher, _ = watcher_for(shop_dir)
        first = watcher.poll()
        assert first is not None
        good = first.config
        replace(
            shop_dir / "rotas" / "weekend.toml", 'members = ["ana", "luis", "marta"]', 'members = ["lusi"]'
        )
        change = watcher.poll()
        assert change is not None and not change.ok
        assert change.config is good and watcher.config is good
        assert change.problems == (
            'rotas/weekend.toml: layer[2].members[1]: unknown person "lusi" (known: ana, luis, marta, owner; '
            "people are [person.ID] in rotas/people.toml)",
        )
        assert not watcher.ok and watcher.problems == change.problems
        assert watcher.poll() is None  # still broken, nothing new to say

        replace(shop_dir / "rotas" / "weekend.toml", 'members = ["lusi"]', 'members = ["luis"]')
        fixed = watcher.poll()
        assert fixed is not None and fixed.ok and watcher.ok and watcher.problems == ()
        assert fixed.config is not None and fixed.config.rotas["weekend"].layers[1].members == ("luis",)

    def test_broken_from_the_start_has_no_config(self, shop_dir: Path) -> None:
        replace(shop_dir / "escalation_rules.toml", 'hold = "5m"', 'hold = "5"')
        watcher, _ = watcher_for(shop_dir)
        change = watcher.poll()
        assert change is not None and change.config is None and not watcher.ok
        assert change.problems[0].startswith("escalation_rules.toml: rule[1].hold: ")

    def test_new_and_deleted_rota_files(self, shop_dir: Path) -> None:
        watcher, _ = watcher_for(shop_dir)
        watcher.poll()
        write(shop_dir / "rotas" / "nights.toml", '[[layer]]\nmembers = ["owner"]\n')
        added = watcher.poll()
        assert added is not None and added.config is not None and "nights" in added.config.rotas
        (shop_dir / "rotas" / "nights.toml").unlink()
        removed = watcher.poll()
        assert removed is not None and removed.config is not None and "nights" not in removed.config.rotas

    def test_editor_lock_files_are_not_rotas(self, shop_dir: Path) -> None:
        watcher, load = watcher_for(shop_dir)
        watcher.poll()
        write(shop_dir / "rotas" / ".#weekend.toml", "not toml at all [")
        assert watcher.poll() is None and load.calls == 1
