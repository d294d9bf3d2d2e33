"""The per-webhook line written straight to oncall's stderr handler reads exactly like the
line the logging machinery writes (time, level, logger, message), has its secrets masked like
every line, and is left to the logging machinery whenever anything else would see it."""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Iterator

from pydantic import SecretStr

from oncall import logline, logredact
from oncall.settings import Settings

SECRET = "whsec_logline_secret_42"
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "


@contextlib.contextmanager
def served_stderr() -> Iterator[io.StringIO]:
    """The root logger as `oncall serve` sets it up: one stderr handler, masking secrets (set
    inside each test: pytest puts its capturing handlers on the root for the test's call)."""
    logredact.REDACTOR.use(Settings(_env_file=None, stripe_secret=SecretStr(SECRET)))  # type: ignore[call-arg]
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logredact.STDERR_FORMATTER)
    handler.addFilter(logredact.REDACTOR)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logredact.REDACTOR.use(Settings(_env_file=None))  # type: ignore[call-arg]


def test_the_line_is_the_one_logging_writes_with_secrets_masked() -> None:
    log = logging.getLogger("oncall.webhooks")
    message = f'webhook {{"source":"stripe","note":"{SECRET}"}}'
    with served_stderr() as stderr:
        log.info("%s", message)
        assert logline.write(log, message)
    ordinary, direct = stderr.getvalue().splitlines()
    masked = r'INFO oncall\.webhooks webhook \{"source":"stripe","note":"\*\*\*"\}'
    assert re.fullmatch(STAMP + masked, direct)
    assert direct[23:] == ordinary[23:] and direct[:19] >= ordinary[:19]


def test_a_level_above_info_writes_nothing() -> None:
    with served_stderr() as stderr:
        logging.getLogger().setLevel(logging.WARNING)
        assert logline.write(logging.getLogger("oncall.webhooks"), "webhook {}")
    assert stderr.getvalue() == ""


def test_anything_else_that_would_see_the_line_gets_it_through_logging() -> None:
    log = logging.getLogger("oncall.webhooks")
    with served_stderr() as stderr:
        root = logging.getLogger()
        assert logline.write(log, "webhook {}")
        own = root.handlers[0]
        for other in ([own, logging.NullHandler()], [logging.StreamHandler(io.StringIO())]):
            root.handlers[:] = other  # a second handler (a test's capture); another handler
            assert not logline.write(log, "webhook {}")
        root.handlers[:] = [own]
        for lg in (log, logging.getLogger("oncall")):  # a handler below the root
            below = logging.NullHandler()
            lg.addHandler(below)
            assert not logline.write(log, "webhook {}")
            lg.removeHandler(below)
        extra = logging.Filter("nothing")
        log.addFilter(extra)
        assert not logline.write(log, "webhook {}")  # a filter on the logger
        log.removeFilter(extra)
        own.addFilter(extra)
        assert not logline.write(log, "webhook {}")  # another filter on the handler
        own.removeFilter(extra)
        own.setFormatter(logging.Formatter("%(message)s"))
        assert not logline.write(log, "webhook {}")  # another format
    assert stderr.getvalue().count("webhook {}") == 1
