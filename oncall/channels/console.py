"""The `console` channel: pages written to the log.

It stands in for every channel that has no credentials (SPEC §3: nothing is silently dropped),
so a fresh install can be tried end to end before any bot or Twilio account exists. Lines go to
the `oncall.page` logger, which writes to stderr even when nothing configured logging.
"""

from __future__ import annotations

import logging
import sys

from oncall.channels.base import Delivery, PageMessage
from oncall.logredact import REDACTOR

log = logging.getLogger("oncall.page")


def _ensure_handler() -> None:
    # uvicorn configures only its own loggers; without this, INFO lines would be lost.
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(REDACTOR)  # a page's ack link is a credential: never in the log
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


class ConsoleChannel:
    name = "console"

    def __init__(self) -> None:
        _ensure_handler()
        self._count = 0

    def configured(self) -> bool:
        return True

    async def send(self, message: PageMessage) -> Delivery:
        self._count += 1
        ref = f"console:{self._count}"
        body = message.body.replace("\n", "\n    ")
        log.info(
            "PAGE %s to %s (%s) [%s]\n    %s", ref, message.person.name, message.person.id, message.key, body
        )
        return Delivery(ok=True, ref=ref)

    async def update(self, ref: str, text: str) -> Delivery:
        log.info("UPDATE %s: %s", ref, text)
        return Delivery(ok=True, ref=ref)
