"""The pages this process has claimed, and the line it draws before each provider call.

A page is claimed `queued` by one instance (several may share a store) and may wait here in a
bundle or for a rate limit. Right before the real call its record goes from `queued` to
`sending` — the line between "certainly never sent" (sent again after a crash) and "maybe
sent" (never sent again). A page whose incident was settled by then, or that another
instance took over after this one's claim lapsed, is left out of the message: the dispatcher
names in a bundle only the pages `mark` returns, so no incident is named by two instances.
If the store cannot take the mark, nothing is sent and the pages go back to `pending`. What a
channel does before it delivers (`channels.base.Prepares`: the Slack DM lookup, building a
client) runs before the line (`Dispatcher`), so a crash on the far side of it is the
delivering call alone.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence

from oncall.channels.base import Claimed
from oncall.service.plumbing import Plumbing
from oncall.store import pages as page_store
from oncall.store.connection import Connection, StoreUnavailable


class Claims:
    def __init__(self, plumbing: Plumbing) -> None:
        self.plumbing = plumbing
        # Who this process is, for the pages it claims (several instances share one store).
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.held: set[str] = set()  # page keys claimed and not finished yet

    async def mark(self, keys: Sequence[str], incident_ids: Sequence[int]) -> Claimed:
        """Marks the pages `keys` `sending` right before their message goes out: the ones this
        process still holds, and which of `incident_ids` were settled meanwhile (perhaps by
        another process). A key this process never claimed (not a page record: a test page)
        is its own to send."""
        ours = [k for k in keys if k in self.held]
        if not ours:
            return Claimed(set(keys), {})
        now = self.plumbing.clock()
        instance = self.instance

        def tx(conn: Connection) -> tuple[set[str], dict[int, str]]:
            held = page_store.mark_sending(conn, ours, instance, now)
            settled = page_store.settled_incidents(conn, incident_ids) if len(held) < len(ours) else {}
            return held, settled

        try:
            held, settled = await self.plumbing.db.transaction(tx)
        except StoreUnavailable as exc:
            return Claimed(set(), {}, unavailable=str(exc))
        return Claimed(held | {k for k in keys if k not in self.held}, settled)
