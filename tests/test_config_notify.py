"""A running server hears of every kind of save of its configuration without polling: an edit
in place, an editor's save by rename, a new rota file, a Kubernetes ConfigMap update and a
symlinked configuration directory switched to a new release; and writes to the database that
shares the directory wake nothing.

The kernel queues an inotify event before the write that causes it returns, so each test
reads the notifier right after the save: no sleeps."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from oncall.config import ConfigWatcher
from oncall.config.notify import DirNotifier

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


def notifier_for(watcher: ConfigWatcher) -> DirNotifier:
    notifier = DirNotifier.open(watcher.targets)
    assert notifier is not None and notifier.complete
    return notifier


@pytest.fixture
def watched(shop_dir: Path) -> Iterator[tuple[ConfigWatcher, DirNotifier]]:
    watcher = ConfigWatcher(shop_dir / "escalation_rules.toml", shop_dir / "rotas")
    assert watcher.poll() is not None
    notifier = notifier_for(watcher)
    yield watcher, notifier
    notifier.close()


def shop_name(watcher: ConfigWatcher) -> str:
    assert watcher.config is not None
    return watcher.config.rules.shop.name


def renamed_shop(text: str, name: str) -> str:
    assert 'name = "Tienda Ejemplo"' in text
    return text.replace('name = "Tienda Ejemplo"', f'name = "{name}"', 1)


def test_nothing_saved_nothing_reported(watched: tuple[ConfigWatcher, DirNotifier]) -> None:
    _, notifier = watched
    assert notifier.drain() is False


def test_an_edit_in_place_is_reported_and_then_in_force(
    shop_dir: Path, watched: tuple[ConfigWatcher, DirNotifier]
) -> None:
    watcher, notifier = watched
    rules = shop_dir / "escalation_rules.toml"
    rules.write_text(renamed_shop(rules.read_text(encoding="utf-8"), "Tienda Nueva"), encoding="utf-8")
    assert notifier.drain() is True
    assert watcher.poll() is not None and shop_name(watcher) == "Tienda Nueva"
    assert notifier.drain() is False  # every event was read


def test_a_save_by_rename_is_reported(shop_dir: Path, watched: tuple[ConfigWatcher, DirNotifier]) -> None:
    watcher, notifier = watched
    rules = shop_dir / "escalation_rules.toml"
    temporary = shop_dir / ".escalation_rules.toml.swp"
    text = renamed_shop(rules.read_text(encoding="utf-8"), "Tienda Renombrada")
    temporary.write_text(text, encoding="utf-8")
    notifier.drain()
    os.replace(temporary, rules)
    assert notifier.drain() is True
    assert watcher.poll() is not None and shop_name(watcher) == "Tienda Renombrada"


def test_a_new_rota_file_is_reported(shop_dir: Path, watched: tuple[ConfigWatcher, DirNotifier]) -> None:
    watcher, notifier = watched
    (shop_dir / "rotas" / "nights.toml").write_text('[[layer]]\nmembers = ["owner"]\n', encoding="utf-8")
    assert notifier.drain() is True
    assert watcher.poll() is not None and watcher.config is not None and "nights" in watcher.config.rotas


def test_database_writes_beside_the_rules_file_are_not_reported(
    shop_dir: Path, watched: tuple[ConfigWatcher, DirNotifier]
) -> None:
    _, notifier = watched
    for name in ("oncall.db", "oncall.db-wal", "oncall.db-journal", "server.log"):
        with (shop_dir / name).open("ab") as f:
            f.write(b"x" * 100)
    (shop_dir / "oncall.db-journal").unlink()
    (shop_dir / "rotas" / "notes.txt").write_text("not a rota", encoding="utf-8")
    assert notifier.drain() is False


def test_a_rotas_directory_made_after_the_start_is_watched(shop_dir: Path) -> None:
    shutil.rmtree(shop_dir / "rotas")
    watcher = ConfigWatcher(shop_dir / "escalation_rules.toml", shop_dir / "rotas")
    watcher.poll()
    notifier = notifier_for(watcher)
    try:
        (shop_dir / "rotas").mkdir()
        assert notifier.drain() is True
        notifier.rewatch()  # what the server does after each report
        (shop_dir / "rotas" / "people.toml").write_text('[person.owner]\nname = "Owner"\n', encoding="utf-8")
        assert notifier.drain() is True
    finally:
        notifier.close()


def test_a_kubernetes_configmap_update_is_reported(tmp_path: Path, shop_dir: Path) -> None:
    """The kubelet writes a new timestamped directory, points `..data_tmp` at it, renames that
    over `..data` and removes the old directory; the mounted names are symlinks into `..data`."""
    mount = tmp_path / "mount"
    mount.mkdir()
    first = mount / "..2026_12_03_10_00_00.1"
    first.mkdir()
    shutil.copy(shop_dir / "escalation_rules.toml", first / "escalation_rules.toml")
    (mount / "..data").symlink_to(first.name)
    (mount / "escalation_rules.toml").symlink_to("..data/escalation_rules.toml")
    watcher = ConfigWatcher(mount / "escalation_rules.toml", shop_dir / "rotas")
    watcher.poll()
    assert shop_name(watcher) == "Tienda Ejemplo"
    notifier = notifier_for(watcher)
    try:
        second = mount / "..2026_12_03_11_00_00.2"
        second.mkdir()
        text = (first / "escalation_rules.toml").read_text(encoding="utf-8")
        (second / "escalation_rules.toml").write_text(renamed_shop(text, "Tienda K8s"), encoding="utf-8")
        (mount / "..data_tmp").symlink_to(second.name)
        os.replace(mount / "..data_tmp", mount / "..data")
        shutil.rmtree(first)
        assert notifier.drain() is True
        assert watcher.poll() is not None and shop_name(watcher) == "Tienda K8s"
        notifier.rewatch()
        assert notifier.drain() is False
    finally:
        notifier.close()


def test_a_symlinked_config_directory_switched_to_a_new_release(tmp_path: Path, shop_dir: Path) -> None:
    """/etc/oncall -> releases/v1, switched to releases/v2 by renaming a new symlink over it:
    the switch is reported, and afterwards edits in v2 are (the watches follow the link)."""
    releases = tmp_path / "releases"
    for release in ("v1", "v2"):
        shutil.copytree(shop_dir / "rotas", releases / release / "rotas")
        shutil.copy(shop_dir / "escalation_rules.toml", releases / release / "escalation_rules.toml")
    v2_rules = releases / "v2" / "escalation_rules.toml"
    v2_rules.write_text(renamed_shop(v2_rules.read_text(encoding="utf-8"), "Tienda v2"), encoding="utf-8")
    current = tmp_path / "current"
    current.symlink_to(releases / "v1")
    watcher = ConfigWatcher(current / "escalation_rules.toml", current / "rotas")
    watcher.poll()
    notifier = notifier_for(watcher)
    try:
        (tmp_path / "current.new").symlink_to(releases / "v2")
        os.replace(tmp_path / "current.new", current)
        assert notifier.drain() is True
        assert watcher.poll() is not None and shop_name(watcher) == "Tienda v2"
        notifier.rewatch()
        weekend = releases / "v2" / "rotas" / "weekend.toml"
        weekend.write_text(weekend.read_text(encoding="utf-8") + "\n", encoding="utf-8")
        assert notifier.drain() is True
        old = releases / "v1" / "rotas" / "weekend.toml"
        old.write_text(old.read_text(encoding="utf-8") + "\n", encoding="utf-8")
        assert notifier.drain() is False  # the old release is no longer watched
    finally:
        notifier.close()
