"""Typed reading of one parsed TOML table, remembering the key path for error messages.

Every accessor reports a problem and returns None instead of raising, so one pass over a
file finds all of its problems. Unknown keys are reported when a `Table` is made, with the
closest known key as a suggestion, because a typo ("polcy") must never be silently ignored.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar

from oncall.config.errors import Problems, suggest
from oncall.core.durations import parse_duration

T = TypeVar("T")


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def item(path: str, index: int) -> str:
    """Array entries are counted from 1, as a reader counts."""
    return f"{path}[{index + 1}]"


# Checked in order: bool before int, datetime before date (each is a subclass of the next).
_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "true/false"),
    (int, "a whole number"),
    (float, "a number"),
    (str, "text"),
    (list, "a list"),
    (dict, "a table"),
    (datetime, "a date and time"),
    (date, "a date"),
    (time, "a time"),
)


def type_name(value: object) -> str:
    return next((name for cls, name in _TYPE_NAMES if isinstance(value, cls)), type(value).__name__)


def read_toml(path: Path, problems: Problems, missing: str = "create it") -> dict[str, Any] | None:
    """The parsed file, or None after reporting why it cannot be read (`missing`: what to do
    when it does not exist)."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        problems.add("", f"file not found ({missing})")
    except IsADirectoryError:
        problems.add("", "is a directory, not a file")
    except OSError as exc:
        problems.add("", f"cannot be read: {exc.strerror or exc}")
    except UnicodeDecodeError:
        problems.add("", "is not UTF-8 text (save it as UTF-8)")
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11 only has the position inside the message: "Invalid value (at line 2, column 5)".
        text = str(exc)
        where = ""
        if "(at line " in text:
            text, _, pos = text.rpartition(" (at ")
            where = pos.rstrip(")")
        elif text.endswith("(at end of document)"):
            text, where = text.removesuffix(" (at end of document)"), "end of file"
        problems.add(where, f"invalid TOML: {text} (fix the syntax there; see docs/configuration.md)")
    return None


class Table:
    """One TOML table at `path`, whose keys must all be in `known` (None: names the owner
    chooses, such as message names)."""

    def __init__(
        self, data: dict[str, Any], path: str, problems: Problems, known: Iterable[str] | None
    ) -> None:
        self.data = data
        self.path = path
        self.problems = problems
        known = tuple(known) if known is not None else None
        for key in data:
            if known is not None and key not in known:
                problems.add(join(path, key), f'unknown key "{key}" {suggest(key, known)}')

    def at(self, key: str) -> str:
        return join(self.path, key)

    def report(self, key: str, message: str) -> None:
        self.problems.add(self.at(key), message)

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str, kind: type | tuple[type, ...], what: str, required: str | None) -> Any:
        if key not in self.data:
            if required is not None:
                self.report(key, f"missing ({required})")
            return None
        value = self.data[key]
        # TOML true/false are Python ints too; a flag must not pass for a number or vice versa.
        if isinstance(value, kind) and not (isinstance(value, bool) and bool not in _as_tuple(kind)):
            return value
        self.report(key, f"must be {what}, not {type_name(value)}")
        return None

    def text(self, key: str, required: str | None = None) -> str | None:
        value: str | None = self._get(key, str, "text in quotes", required)
        if value is not None and not value.strip():
            self.report(key, "is empty" + (f" ({required})" if required else " (remove it or fill it in)"))
            return None
        return value

    def integer(self, key: str, required: str | None = None) -> int | None:
        value: int | None = self._get(key, int, "a whole number", required)
        return value

    def number(self, key: str) -> float | None:
        value: int | float | None = self._get(key, (int, float), "a number", None)
        return None if value is None else float(value)

    def flag(self, key: str) -> bool | None:
        value: bool | None = self._get(key, bool, "true or false", None)
        return value

    def texts(self, key: str, required: str | None = None) -> list[tuple[str, str]] | None:
        """A list of strings as (item path, value) pairs; a single string is a list of one,
        because `kind = "payment_failed"` is what people write."""
        if key not in self.data:
            if required is not None:
                self.report(key, f"missing ({required})")
            return None
        value = self.data[key]
        if isinstance(value, str):
            return [(self.at(key), value)]
        if not isinstance(value, list):
            self.report(key, f'must be a list of texts such as ["a", "b"], not {type_name(value)}')
            return None
        out: list[tuple[str, str]] = []
        for i, entry in enumerate(value):
            if isinstance(entry, str):
                out.append((item(self.at(key), i), entry))
            else:
                self.problems.add(item(self.at(key), i), f"must be text in quotes, not {type_name(entry)}")
        return out

    def parsed(self, key: str, parse: Callable[[str], T], required: str | None = None) -> T | None:
        """A string converted by `parse`, whose ValueError message becomes the problem."""
        text = self.text(key, required)
        if text is None:
            return None
        try:
            return parse(text)
        except ValueError as exc:
            self.report(key, str(exc))
            return None

    def each_parsed(self, entries: list[tuple[str, str]], parse: Callable[[str], T]) -> tuple[list[T], bool]:
        """Each (path, text) of `texts()` converted by `parse`, and whether all were: every
        ValueError message becomes a problem at its item, the others are still returned."""
        out: list[T] = []
        ok = True
        for where, text in entries:
            try:
                out.append(parse(text))
            except ValueError as exc:
                self.problems.add(where, str(exc))
                ok = False
        return out, ok

    def duration(self, key: str, required: str | None = None) -> timedelta | None:
        return self.parsed(key, parse_duration, required)

    def table(self, key: str, known: Iterable[str] | None, required: str | None = None) -> Table | None:
        value: dict[str, Any] | None = self._get(key, dict, "a table", required)
        return None if value is None else Table(value, self.at(key), self.problems, known)

    def tables(self, key: str, known: Iterable[str]) -> list[Table]:
        """An array of tables (`[[rule]]`), each at `key[N]`."""
        if key not in self.data:
            return []
        value = self.data[key]
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.report(key, f"must be written as [[{join(self.path, key)}]] tables, not {type_name(value)}")
            return []
        return [Table(v, item(self.at(key), i), self.problems, known) for i, v in enumerate(value)]


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)
