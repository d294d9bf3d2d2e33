"""One INFO line written straight to oncall's own stderr handler, without a `LogRecord`: the
line each webhook logs (thousands a second in a flood, where building, filtering and
formatting a record cost a seventh of a webhook's CPU).

`write(logger, message)` writes exactly the text the logging machinery would (same format,
same timestamp, the message masked by `logredact.REDACTOR` as its filter would mask it),
under the handler's lock, flushed. It takes that short cut only when the line could go nowhere
else: the logger and its ancestors have no handler and no filter and propagate, and the root's
only handler is the one `logredact.configure` set up, with its own formatter and the redacting
filter alone. Otherwise (a test's `caplog`, a handler or filter someone added, another format)
it returns False and the caller logs the ordinary way.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from oncall import logredact

_LEVEL = logging.INFO
_LEVEL_NAME = logging.getLevelName(_LEVEL)

# The formatted date of the second last written: a flood writes thousands of lines a second.
_second = -1
_stamp = ""


def _only_handler(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """oncall's stderr handler when it is the only place `logger`'s INFO lines go, else None."""
    if logger.disabled or logger.filters:
        return None
    node: logging.Logger | None = logger
    root = logging.getLogger()
    while node is not None and node is not root:
        if node.handlers or not node.propagate:
            return None
        node = node.parent
    handlers = root.handlers
    if node is not root or len(handlers) != 1:
        return None
    handler = handlers[0]
    filters = handler.filters
    if (
        handler.formatter is not logredact.STDERR_FORMATTER
        or type(handler) is not logging.StreamHandler
        or len(filters) != 1
        or filters[0] is not logredact.REDACTOR
        or handler.level > _LEVEL
    ):
        return None
    return handler


def write(logger: logging.Logger, message: str) -> bool:
    """Writes `message` as `logger`'s INFO line; False (nothing written) when the line must go
    through the logging machinery instead. A level that drops INFO writes nothing (True)."""
    global _second, _stamp
    if not logger.isEnabledFor(_LEVEL):
        return True
    handler = _only_handler(logger)
    if handler is None:
        return False
    now = time.time()
    second = int(now)
    if second != _second:
        # As `Formatter.formatTime`: local time, "%Y-%m-%d %H:%M:%S,mmm".
        _stamp = time.strftime(logging.Formatter.default_time_format, time.localtime(now))
        _second = second
    msecs = int((now - second) * 1000)
    text = f"{_stamp},{msecs:03d} {_LEVEL_NAME} {logger.name} {logredact.REDACTOR.redact(message)}"
    handler.acquire()
    try:
        stream = handler.stream
        stream.write(text + handler.terminator)
        stream.flush()
    except RecursionError:
        raise
    except Exception:
        # As `StreamHandler.emit`: the handler reports its own failure (once, on stderr).
        handler.handleError(logger.makeRecord(logger.name, _LEVEL, "(unknown file)", 0, message, (), None))
    finally:
        handler.release()
    return True
