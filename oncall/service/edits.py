"""Edits of delivered pages after an ack (SPEC §5: every message of the incident says who
acted): Telegram and Slack messages are rewritten, an SMS gets one short confirmation.

A page delivered after the update ran (the provider was slow) is edited on arrival with the
incident's last update, or — settled by another process — with the words the core would use
(`core.settled.settled_text`). A bundle still paging for another incident is left alone
until that one is settled too; then it says so for all of them (`pagetext.bundle_settled`), and
an SMS bundle gets one confirmation, not one per incident.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from oncall.channels.delivery import Dispatcher
from oncall.core import pagetext
from oncall.core.incident import Incident
from oncall.core.models import person_language
from oncall.core.promisetext import sms_contacted_code
from oncall.core.settled import settled_words
from oncall.core.words import Words
from oncall.service.plumbing import Plumbing
from oncall.store import pages as page_store
from oncall.store.connection import Connection
from oncall.store.pages import PageRow

log = logging.getLogger("oncall.escalation")
V = TypeVar("V")
Render = Callable[[str | None], str]  # a text in a reader's language

EDITED = ("telegram", "slack")  # channels whose `update` rewrites the page (SMS sends a new one)
UNTOUCHED = ("voice",)  # a call cannot be edited, and a second call to say so would wake someone


class Edits:
    def __init__(self, plumbing: Plumbing, dispatcher: Dispatcher) -> None:
        self.plumbing = plumbing
        self.dispatcher = dispatcher
        # incident -> its last update, for pages delivered late
        self._update_texts: dict[int, tuple[str, Words | None]] = {}
        self._edits: dict[str, str] = {}  # delivered message -> the update it was given

    def remember(self, incident_id: int, text: str, words: Words | None = None) -> None:
        """The incident's update, for its pages that are delivered later."""
        _remember(self._update_texts, incident_id, (text, words))

    async def delivered_late(self, settled: Incident, page_key: str) -> None:
        """Page `page_key` was delivered after its incident was settled: it is edited at once."""
        known = self._update_texts.get(settled.id)
        if known is None:
            said = settled_words(settled, self.plumbing.tz())
            known = (said.en, said)
        words = known[1]
        render = words.render if words is not None else None
        await self.update(settled.id, known[0], only=page_key, words=render)

    async def update(
        self,
        incident_id: int,
        text: str,
        only: str | None = None,
        *,
        contacted: bool = False,
        channels: Collection[str] | None = None,
        words: Render | None = None,
    ) -> None:
        """Edits (Telegram, Slack) or confirms (SMS) every delivered page of the incident, or
        only the page `only` (one delivered after the update ran), or only those delivered by
        `channels`; a message already given `text` is left alone. `contacted`: a customer waits
        for contact, so the edit offers "Customer contacted" (a button; SMS: its reply code).
        Each page is edited in its person's language (`words`; without them, `text` as is)."""

        def tx(conn: Connection) -> tuple[list[PageRow], set[str], dict[str, int]]:
            pages = [p for p in page_store.pages_of(conn, incident_id) if only is None or p.key == only]
            refs = {p.ref for p in pages if p.ref and p.state == "sent"}
            return (
                pages,
                page_store.refs_still_paging(conn, refs, incident_id),
                page_store.incidents_per_ref(conn, refs),
            )

        pages, still_paging, counts = await self.plumbing.db.transaction(tx)
        config = self.plumbing.config()
        shop = config.rules.shop if config is not None else None
        seen: set[str] = set()
        for p in pages:
            if p.state != "sent" or not p.ref or p.ref in seen or not p.sent_via:
                continue
            if (channels is not None and p.sent_via not in channels) or p.sent_via in UNTOUCHED:
                continue
            if p.ref in still_paging:
                # A bundle that also pages for incidents still triggered: editing it would erase
                # their page and their buttons, and an SMS bundle would get a confirmation per
                # incident (a flood of texts). It is updated once, when the last is settled.
                continue
            seen.add(p.ref)
            bundle = counts.get(p.ref, 1) > 1
            lang = person_language(config.people.get(p.person) if config is not None else None, shop)
            said = words(lang) if words is not None else text
            said = pagetext.bundle_settled(counts[p.ref], said, lang) if bundle else said
            if self._edits.get(p.ref) == said or (bundle and p.ref in self._edits):
                # The update and a page delivered late both reached this one; or a bundle was
                # told already (the updates of its last incidents, settled at once, race here).
                continue
            _remember(self._edits, p.ref, said)
            # A customer waits for contact: a single page's edit offers "Customer contacted" (a
            # button; SMS: its reply code). A bundle's edit covers several incidents: none offered.
            offer = incident_id if contacted and not bundle and p.sent_via in EDITED else None
            if contacted and not bundle and p.sent_via == "sms":
                said = f"{said} {sms_contacted_code(incident_id, lang)}"
            result = await self.dispatcher.update(p.sent_via, p.ref, said, contacted=offer, lang=lang)
            if not result.ok:
                log.warning("updating %s page %s failed: %s", p.sent_via, p.ref, result.error)


def _remember(memory: dict[Any, V], key: Any, text: V, keep: int = 10_000) -> None:
    memory.pop(key, None)
    memory[key] = text
    while len(memory) > keep:
        del memory[next(iter(memory))]
