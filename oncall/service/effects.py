"""Carrying out what the core decided. Each piece of work is one store transaction: the new
incident and its page records are written inside it (`apply`), and everything that talks to
the outside — team posts, customer reassurance, edits of delivered pages — is collected in a
`Batch` and started only after the transaction committed (`after`): a rolled-back decision
never reaches anyone.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from oncall.core.incident import SYSTEM, Incident, Outcome, Page, Post, Reassure, Update
from oncall.core.settled import settled_as
from oncall.core.words import Words
from oncall.service.edits import Edits
from oncall.service.notices import Notices, Reassurance
from oncall.service.plumbing import Plumbing
from oncall.store import incidents as store
from oncall.store import promises as promise_store
from oncall.store.connection import Connection


@dataclass(frozen=True, slots=True)
class Settled:
    """The incident was acknowledged, resolved or snoozed: its delivered pages say so."""

    incident_id: int
    text: str  # English
    what: str = "acknowledged"  # what happened to the incident: "resolved", "snoozed", …
    contacted: bool = False  # a customer still waits for contact: offer "Customer contacted"
    words: Words | None = None  # `text` for each reader's language


Effect = Post | Reassurance | Settled


@dataclass
class Batch:
    """What one transaction decided, to carry out after it committed."""

    effects: list[Effect] = field(default_factory=list)
    pages: int = 0
    # Other work for after the commit (a promise's reminder, a `_late` message), started as is.
    later: list[Callable[[], Coroutine[Any, Any, Any]]] = field(default_factory=list)

    def add(self, other: Batch) -> None:
        self.effects += other.effects
        self.pages += other.pages
        self.later += other.later


class KeepsPromises(Protocol):
    """`service.promises`, as a resolve needs it: the incident's promises are kept."""

    def resolved(self, conn: Connection, inc: Incident, now: datetime, batch: Batch) -> None: ...


class Effects:
    def __init__(
        self, plumbing: Plumbing, notices: Notices, edits: Edits, settle: Callable[[int, str], None]
    ) -> None:
        self.plumbing = plumbing
        self.notices = notices
        self.edits = edits
        self.settle = settle  # the dispatcher's: drop what is still queued for a settled incident
        self.promises: KeepsPromises | None = None  # set by `Service`: a resolve keeps the promises

    def apply(
        self,
        conn: Connection,
        out: Outcome,
        now: datetime,
        batch: Batch,
        *,
        index: bool = False,
        saved: bool = False,
    ) -> None:
        """Writes an outcome of the core and queues its effects for after the commit; `index`
        when the outcome added events; `saved` when the incident is written already (a new one,
        `store.insert_incident`)."""
        inc = out.incident
        if not saved:
            store.save_incident(conn, inc, index=index)
        pages = [a for a in out.actions if isinstance(a, Page)]
        if pages:
            store.add_pages(conn, inc.id, pages, now)
            batch.pages += len(pages)
        start = len(batch.effects)
        _collect(out, now, batch)
        if inc.reassure is None or self.promises is None:
            return  # no rule of it reassures: it promised nobody anything
        if inc.state == "resolved" and inc.resolved_by != SYSTEM:
            self.promises.resolved(conn, inc, now, batch)
        elif inc.state == "acknowledged":
            for i in range(start, len(batch.effects)):
                eff = batch.effects[i]
                if not isinstance(eff, Settled) or eff.what != "acknowledged":
                    continue
                if any(p.is_open for p in promise_store.of_incident(conn, inc.id)):
                    batch.effects[i] = replace(eff, contacted=True)

    def apply_many(self, conn: Connection, outs: Sequence[Outcome], now: datetime, batch: Batch) -> None:
        """`apply` for many outcomes that added no events (timers), in two statements."""
        store.save_incidents(conn, [o.incident for o in outs])
        pages = [(o.incident.id, a) for o in outs for a in o.actions if isinstance(a, Page)]
        store.add_pages_many(conn, pages, now)
        batch.pages += len(pages)
        for o in outs:
            _collect(o, now, batch)

    def after(self, batch: Batch) -> None:
        """Starts what `batch` holds, once its transaction committed."""
        for eff in batch.effects:
            if isinstance(eff, Post):
                self.plumbing.spawn(self.notices.post(eff.target, eff.text))
            elif isinstance(eff, Reassurance):
                self.plumbing.spawn(self.notices.reassure(eff))
            else:
                # Acknowledged, resolved or snoozed (by anyone: a person, the API, the helpdesk):
                # its pages still queued or retrying are dropped, like after `act`.
                self.settle(eff.incident_id, eff.what)
                self.edits.remember(eff.incident_id, eff.text, eff.words)
                self.plumbing.spawn(
                    self.edits.update(
                        eff.incident_id,
                        eff.text,
                        contacted=eff.contacted,
                        words=eff.words.render if eff.words is not None else None,
                    )
                )
        for job in batch.later:
            self.plumbing.spawn(job())
        if batch.pages:
            self.plumbing.wake()


def _collect(out: Outcome, now: datetime, batch: Batch) -> None:
    inc = out.incident
    for a in out.actions:
        if isinstance(a, Post):
            batch.effects.append(a)
        elif isinstance(a, Reassure):
            batch.effects.append(Reassurance(inc, a.message, now, a.events))
        elif isinstance(a, Update):
            batch.effects.append(Settled(inc.id, a.text, settled_as(inc), words=a.words))
