"""Tells when the configuration's files may have changed, through Linux inotify, so that a
running server re-reads them when the owner saves instead of on a timer: an idle server then
never wakes up for its configuration.

What is watched are directories, not files: an editor that saves by writing a new file and
renaming it over the old one, a new file in rotas/, and a Kubernetes ConfigMap update (which
swaps the `..data` symlink of the mounted directory) all show up as entries changing in a
directory. For each file, the directory holding it is watched, and so is the directory of every
symlink met on the way to it; for rotas/, also the directory above (rotas/ being created or
replaced). Only events for those names count: the working directory often holds
the SQLite database too, and its writes must not wake anything.

No thread and no clock: the caller's event loop reads the descriptor (`fileno()`, `drain()`)
and, when something relevant happened, calls `rewatch()` (symlinks may point elsewhere now)
and then re-reads the files. `DirNotifier.open()` returns None where inotify is unavailable
(not Linux, no such libc call, the per-user instance limit reached): the caller then polls.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import struct
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("oncall.config")

# <sys/inotify.h>
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000

# Not IN_MODIFY: it comes with every write(), also of the SQLite files that often share the
# directory, and a half-written file is not worth reading; an editor's save ends with a close.
_MASK = (
    IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
)
# The watched directory itself went away or moved, or events were lost: look again in any case.
_ALWAYS = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_Q_OVERFLOW
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name
_MAX_LINKS = 40  # as the kernel: a longer chain of symlinks is a loop


@dataclass(frozen=True, slots=True)
class Target:
    """A directory to watch and the entries in it that matter. `suffix`: every entry whose name
    ends so matters too (rotas/ gets new files); names starting with `..` always matter (the
    symlinks by which Kubernetes swaps a ConfigMap's contents at once)."""

    directory: Path
    names: frozenset[str] = frozenset()
    suffix: str | None = None

    def wants(self, name: str) -> bool:
        return (
            name in self.names
            or name.startswith("..")
            or (self.suffix is not None and name.endswith(self.suffix))
        )


def targets_for(files: Iterable[Path], directories: Iterable[tuple[Path, str]] = ()) -> list[Target]:
    """The directories to watch for `files` (each file's entry and every symlink on the way to
    it) and for `directories` (their own entry in the directory above, and every entry in them
    ending with the suffix given, e.g. rotas/ and ".toml"). A missing directory is watched through its
    nearest existing ancestor, for the name of the missing step, so its creation is seen."""
    wanted: dict[Path, tuple[set[str], str | None]] = {}

    def add(directory: Path, name: str | None, suffix: str | None = None) -> None:
        while not directory.is_dir() and directory != directory.parent:
            directory, name = directory.parent, directory.name
        names, old_suffix = wanted.setdefault(directory, (set(), None))
        if name is not None:
            names.add(name)
        if suffix is not None and old_suffix is None:
            wanted[directory] = (names, suffix)

    for file in files:
        for directory, name in entries_on_the_way(file):
            add(directory, name)
    for directory, suffix in directories:
        hops = entries_on_the_way(directory)
        for parent, name in hops:
            add(parent, name)
        real = hops[-1][0] / hops[-1][1]
        add(real, None, suffix)
    return [Target(d, frozenset(names), suffix) for d, (names, suffix) in wanted.items()]


def entries_on_the_way(path: Path) -> list[tuple[Path, str]]:
    """(directory, name) of each symlink met resolving `path`, then of the real entry (last).
    Resolved step by step, so that a relative link is taken from where it is."""
    parts = list(Path(os.path.abspath(path)).parts)
    current = Path(parts.pop(0))
    hops: list[tuple[Path, str]] = []
    links = 0
    while parts:
        name = parts.pop(0)
        candidate = current / name
        if links < _MAX_LINKS and candidate.is_symlink():
            links += 1
            hops.append((current, name))
            try:
                target = Path(os.readlink(candidate))
            except OSError:
                current = candidate
                continue
            # `current` has no symlinks left in it, so ".." in the target may be folded by text.
            resolved = Path(os.path.normpath(current / target))
            parts = list(resolved.parts[1:]) + parts
            current = Path(resolved.parts[0])
        else:
            current = candidate
    hops.append((current.parent, current.name))
    return hops


class DirNotifier:
    """An inotify instance watching `targets()` (called again by each `rewatch()`)."""

    def __init__(self, fd: int, libc: ctypes.CDLL, targets: Callable[[], list[Target]]) -> None:
        self._fd = fd
        self._libc = libc
        self._targets = targets
        self._watches: dict[int, Target] = {}  # watch descriptor -> what matters there
        self.complete = False  # every target directory is watched (else: also poll)

    @classmethod
    def open(cls, targets: Callable[[], list[Target]]) -> DirNotifier | None:
        """A notifier with its watches set, or None where inotify cannot be used."""
        if not sys.platform.startswith("linux"):
            return None
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            init = libc.inotify_init1
        except (OSError, AttributeError):
            return None
        init.argtypes, init.restype = [ctypes.c_int], ctypes.c_int
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_add_watch.restype = ctypes.c_int
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.inotify_rm_watch.restype = ctypes.c_int
        fd = init(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            log.info("no file-change notification (%s): polling the configuration", _errno_name())
            return None
        notifier = cls(fd, libc, targets)
        notifier.rewatch()
        return notifier

    def fileno(self) -> int:
        return self._fd

    def rewatch(self) -> bool:
        """Watches the target directories as they are now (a symlink may point elsewhere, a
        directory may have appeared) and drops watches no longer needed; True when every
        target is watched."""
        watches: dict[int, Target] = {}
        complete = True
        for target in self._targets():
            wd = self._libc.inotify_add_watch(self._fd, os.fsencode(target.directory), _MASK)
            if wd < 0:
                complete = False
                log.info("cannot watch %s (%s): polling the configuration", target.directory, _errno_name())
                continue
            known = watches.get(wd)  # two paths to the same directory share one watch
            if known is not None:
                target = Target(target.directory, known.names | target.names, known.suffix or target.suffix)
            watches[wd] = target
        for wd in self._watches.keys() - watches.keys():
            self._libc.inotify_rm_watch(self._fd, wd)  # fails harmlessly if it is gone already
        self._watches, self.complete = watches, complete
        return complete

    def drain(self) -> bool:
        """Reads every pending event; True when one of them may change the configuration."""
        relevant = False
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return relevant
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise
            if not data:
                return relevant
            relevant = self._relevant(data) or relevant

    def _relevant(self, data: bytes) -> bool:
        offset, found = 0, False
        while offset + _HEADER.size <= len(data):
            wd, mask, _cookie, size = _HEADER.unpack_from(data, offset)
            offset += _HEADER.size
            name = data[offset : offset + size].rstrip(b"\0").decode(errors="surrogateescape")
            offset += size
            if mask & _ALWAYS:
                found = True
                continue
            target = self._watches.get(wd)
            if target is not None and target.wants(name):
                found = True
        return found

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _errno_name() -> str:
    code = ctypes.get_errno()
    return errno.errorcode.get(code, str(code))
