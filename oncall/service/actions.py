"""Acting on an incident — ack, resolve, snooze, customer contacted — from any channel
(Telegram, Slack, SMS, the web link), the API or the terminal: one store transaction that
steps the incident, then its pages still queued are dropped and the delivered ones edited
(`service.effects`). "Customer contacted" is the promises' (`service.promises`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from oncall import i18n
from oncall.core.incident import Acted, step
from oncall.core.models import Person, person_language
from oncall.core.report import first_acknowledgement
from oncall.core.words import say
from oncall.metrics import METRICS
from oncall.service.effects import Batch, Effects, Settled
from oncall.service.plumbing import Plumbing
from oncall.store import incidents as store
from oncall.store import pages as page_store
from oncall.store.connection import Connection

Verb = Literal["ack", "resolve", "snooze", "contacted"]


@dataclass(frozen=True, slots=True)
class ActResult:
    ok: bool
    incident_id: int | None
    state: str | None
    text: str  # one line for the person who acted
    awaiting_contact: bool = False  # acknowledged while a customer waits for promised contact


Contacted = Callable[[int | None, Person, str, datetime], Awaitable["ActResult"]]


class Actions:
    def __init__(
        self,
        plumbing: Plumbing,
        effects: Effects,
        settle: Callable[[int, str], None],
        contacted: Contacted | None = None,
    ) -> None:
        self.plumbing = plumbing
        self.effects = effects
        self.settle = settle  # the dispatcher's: nothing more goes out for the incident
        self.contacted = contacted  # the promises': "Customer contacted"

    async def act(
        self,
        incident_id: int | None,
        actor: Person,
        verb: Verb,
        via: str,
        now: datetime,
        snooze_for: timedelta | None = None,
    ) -> ActResult:
        """Acknowledge, resolve, snooze, or mark the customers contacted. `incident_id` None =
        the newest incident paged to `actor`."""
        if verb == "contacted":
            if self.contacted is None:
                return ActResult(False, incident_id, None, self._say(actor, "act.no_contacts"))
            done = await self.contacted(incident_id, actor, via, now)
            METRICS.act(verb, via, done.ok)
            return done
        world = self.plumbing.current_world()
        if world is None:
            return ActResult(False, incident_id, None, self._say(actor, "act.no_config"))
        batch = Batch()

        def tx(conn: Connection) -> ActResult:
            iid = (
                incident_id
                if incident_id is not None
                else page_store.newest_incident_paged_to(conn, actor.id)
            )
            if iid is None:
                return ActResult(False, None, None, self._say(actor, "act.nothing_paged"))
            inc = store.get_incident(conn, iid, lock=True)
            if inc is None:
                return ActResult(False, iid, None, self._say(actor, "act.no_such", id=iid))
            out = step(inc, Acted(actor.name, verb, via, snooze_for), now, world)
            if out.ok:
                self.effects.apply(conn, out, now, batch)
                METRICS.acknowledged(first_acknowledgement(inc, out.incident))
            waiting = any(isinstance(e, Settled) and e.contacted for e in batch.effects)
            text = say(out.text, out.words, self._lang(actor))
            return ActResult(out.ok, iid, out.incident.state, text, waiting)

        result = await self.plumbing.db.transaction(tx)
        METRICS.act(verb, via, result.ok)
        if result.ok and result.incident_id is not None and verb in ("ack", "resolve"):
            self.settle(result.incident_id, "resolved" if verb == "resolve" else "acknowledged")
        self.effects.after(batch)
        self.plumbing.wake()
        return result

    def _lang(self, actor: Person) -> str:
        """What the person who acted reads: their language, else the shop's."""
        config = self.plumbing.config()
        return person_language(actor, config.rules.shop if config is not None else None)

    def _say(self, actor: Person, key: str, **fields: object) -> str:
        return i18n.text(self._lang(actor), key, **fields)
