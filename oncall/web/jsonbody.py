"""Reading JSON that anyone may have sent: every way it can be unreadable is one
`UnreadableJson` (a `ValueError`) whose message goes into the 400 answer, never a 5xx.

Besides plain syntax errors that is: bytes that are not UTF-8; nesting deeper than
`MAX_DEPTH` (Python's decoder raises `RecursionError` somewhere near 1,000 levels, at a depth
that depends on the caller's stack, and deep values break later code that recurses); and
strings with an unpaired surrogate escape (`"\\ud800"`), which decode to a `str` that cannot
be encoded as UTF-8 again, so storing it fails (a 503 the platform would retry for days).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

MAX_DEPTH = 64  # platforms nest a few levels; Stripe's deepest events are under 10

UNPAIRED = "JSON with an unpaired surrogate escape (\\ud800-\\udfff) in a string"
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class UnreadableJson(ValueError):
    """Not JSON oncall can read; `str()` says why and reads after "the body is …"."""


def loads(data: bytes | str) -> Any:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        # orjson first (several times faster on a webhook-sized body); whatever it refuses is
        # read again by the standard library, so what is accepted and every error message stay
        # the standard library's (orjson refuses e.g. NaN and integers over 64 bits).
        value = orjson.loads(raw)
    except (orjson.JSONDecodeError, RecursionError):
        value = _stdlib_loads(data)
    # Both checks walk the value only when a cheap scan of the bytes says they might fail.
    deep = raw.count(b"[") + raw.count(b"{") > MAX_DEPTH
    surrogates = b"\\u" in raw and _SURROGATE_ESCAPE.search(raw) is not None
    if deep or surrogates:
        _check(value)
    return value


def _stdlib_loads(data: bytes | str) -> Any:
    try:
        value = json.loads(data)
    except RecursionError:
        raise UnreadableJson(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError as exc:
        raise UnreadableJson(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    except ValueError as exc:
        raise UnreadableJson(f"not valid JSON: {exc}") from None
    return value


def _check(value: Any) -> None:
    """Depth and unpaired surrogates, without recursion (the value may be ~1,000 deep)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise UnreadableJson(f"JSON nested deeper than {MAX_DEPTH} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise UnreadableJson(UNPAIRED) from None
