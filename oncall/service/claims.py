"""The pages this process has claimed, and the line it draws before each provider call.

A page is claimed `queued` by one instance (several may share a store) and may wait here in a
bundle or for a rate limit. Right before the real call its record goes from `queued` to
`sending` — the line between "certainly never sent" (sent again after a crash) and "maybe
sent" (never sent again). If by then the incident was settled, or another instance took the
page over after this one's claim lapsed, the call is not made.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping

from oncall.channels.base import Channel, Delivery, OffersContacted, PageMessage, cancelled, taken_over
from oncall.service.plumbing import Plumbing
from oncall.store import pages as page_store
from oncall.store.connection import Connection

Settle = Callable[[int, str], None]  # the dispatcher's: drop what is queued for a settled incident


class Claims:
    def __init__(self) -> None:
        # Who this process is, for the pages it claims (several instances share one store).
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.held: set[str] = set()  # page keys claimed and not finished yet


class _Marking:
    """A channel as the dispatcher sees it: marks the pages a message carries `sending` right
    before the real call."""

    def __init__(self, inner: Channel, claims: Claims, plumbing: Plumbing, settle: Settle) -> None:
        self.inner = inner
        self.claims = claims
        self.plumbing = plumbing
        self.settle = settle
        self.name = inner.name

    def configured(self) -> bool:
        return self.inner.configured()

    async def send(self, message: PageMessage) -> Delivery:
        keys = [k for k in message.keys if k in self.claims.held]
        if keys:
            now = self.plumbing.clock()
            instance = self.claims.instance

            def tx(conn: Connection) -> tuple[int, dict[int, str]]:
                held = page_store.mark_sending(conn, keys, instance, now)
                return held, {} if held else page_store.settled_incidents(conn, message.incident_ids)

            held, settled = await self.plumbing.db.transaction(tx)
            if held == 0 and settled and len(settled) == len(set(message.incident_ids)):
                # Acknowledged or resolved since it was queued, perhaps by another process.
                for incident_id, what in settled.items():
                    self.settle(incident_id, what)
                return cancelled(next(iter(settled.values())))
            if held == 0:
                return taken_over()
        return await self.inner.send(message)

    async def update(self, ref: str, text: str) -> Delivery:
        return await self.inner.update(ref, text)

    async def update_offering_contacted(self, ref: str, text: str, incident_id: int) -> Delivery:
        if isinstance(self.inner, OffersContacted):
            return await self.inner.update_offering_contacted(ref, text, incident_id)
        return await self.inner.update(ref, text)


class MarkingChannels(Mapping[str, Channel]):
    """The service's channels, each wrapped in `_Marking`, read live (a test or a reload may
    change `service.channels`)."""

    def __init__(self, claims: Claims, plumbing: Plumbing, settle: Settle) -> None:
        self.claims = claims
        self.plumbing = plumbing
        self.settle = settle

    def __getitem__(self, name: str) -> Channel:
        return _Marking(self.plumbing.channels[name], self.claims, self.plumbing, self.settle)

    def __iter__(self) -> Iterator[str]:
        return iter(self.plumbing.channels)

    def __len__(self) -> int:
        return len(self.plumbing.channels)
