"""Reload the configuration when its files change, keeping the last good one on a bad edit.

The server calls `poll()` when the files may have changed (SPEC §2.2: a change is in force
within 5 s): when the directories of `watch_targets()` report a change (oncall.config.notify),
or every second or so where that is unavailable. A poll costs one `stat` per file plus one
directory listing; files are parsed only when something changed. No threads and no clock here:
the caller decides when to poll, so tests just edit files and call `poll()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from oncall.config.errors import ConfigError
from oncall.config.loader import load_config
from oncall.config.notify import Target, targets_for
from oncall.config.rotas import PEOPLE_FILE, rota_files
from oncall.core.models import Config

# (name, mtime_ns, size, inode) per file: an editor that saves by rename changes the inode even
# when size and mtime happen to match.
Snapshot = tuple[tuple[str, int, int, int], ...]


@dataclass(frozen=True, slots=True)
class Change:
    """What a poll found. `config` is the configuration now in force: the new one when
    `problems` is empty, otherwise the last good one (None if there never was one)."""

    config: Config | None
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


class ConfigWatcher:
    def __init__(
        self,
        rules_file: Path,
        rotas_dir: Path,
        load: Callable[[Path, Path], Config] = load_config,
    ) -> None:
        self.rules_file = rules_file
        self.rotas_dir = rotas_dir
        self._load = load
        self._seen: Snapshot | None = None
        self.config: Config | None = None  # the last good configuration, in force
        self.problems: tuple[str, ...] = ()  # why the files on disk are not in force; () if they are

    @property
    def ok(self) -> bool:
        """Whether the files on disk are the configuration in force (for /readyz)."""
        return self.config is not None and not self.problems

    def poll(self) -> Change | None:
        """Reload if any file changed since the last poll (always on the first); None if
        nothing changed."""
        snapshot = self.snapshot()
        if snapshot == self._seen:
            return None
        # Remember the snapshot taken *before* loading: a write that lands during the load
        # changes the files again and is picked up by the next poll.
        self._seen = snapshot
        try:
            config = self._load(self.rules_file, self.rotas_dir)
        except ConfigError as exc:
            self.problems = tuple(exc.problems)
        else:
            self.config, self.problems = config, ()
        return Change(self.config, self.problems)

    def targets(self) -> list[Target]:
        """The directories whose changes may change what `poll()` reads."""
        return watch_targets(self.rules_file, self.rotas_dir)

    def snapshot(self) -> Snapshot:
        files = [self.rules_file, self.rotas_dir / PEOPLE_FILE, *rota_files(self.rotas_dir).values()]
        return tuple(_stat(path) for path in files)


def watch_targets(rules_file: Path, rotas_dir: Path) -> list[Target]:
    """What to watch for the rules file and rotas/ (its people.toml and every rota file,
    each possibly a symlink, and new files in it)."""
    files = [rules_file, rotas_dir / PEOPLE_FILE, *rota_files(rotas_dir).values()]
    return targets_for(files, [(rotas_dir, ".toml")])


def _stat(path: Path) -> tuple[str, int, int, int]:
    try:
        st = path.stat()
    except OSError:
        return (str(path), -1, -1, -1)  # missing: a change when it appears
    return (str(path), st.st_mtime_ns, st.st_size, st.st_ino)
