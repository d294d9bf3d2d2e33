"""The one error the config loader raises, and the collector that builds it.

    ConfigError            a file is missing, unreadable or invalid; catch it where the files
                           are (re)loaded: `oncall check` prints `.problems`, the file watcher
                           keeps the last good configuration and reports them.

Every problem is one line, `FILE: key.path: what is wrong (what to do)`, so that the owner can
fix all of them in one edit instead of one per run.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(Exception):
    """The configuration files cannot be used; `.problems` lists every problem found."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))


def suggest(word: str, known: Iterable[str]) -> str:
    """`(did you mean "policy"?)` for a near miss, else `(known: a, b, c)`."""
    known = sorted(known)
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if close:
        return f'(did you mean "{close[0]}"?)'
    return f"(known: {', '.join(known)})" if known else "(there are none)"


def known_list(known: Iterable[str], hint: str = "") -> str:
    """`(known: weekend, owner-only)`, in the order given (the file's), as the SPEC words an
    unknown reference to a named thing; `hint` is appended after a semicolon."""
    names = list(known)
    text = f"known: {', '.join(names)}" if names else "there are none"
    return f"({text}; {hint})" if hint else f"({text})"


class Problems:
    """Collects the problems of one file under its label (`escalation_rules.toml`)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        where = f"{self.label}: {path}: " if path else f"{self.label}: "
        self.items.append(where + message)

    def __bool__(self) -> bool:
        return bool(self.items)
