"""What the API, the status page, the chat commands and the terminal read: incidents as views
(`IncidentView`, with their timelines and promises), who is on call (`OnCallView`), and the
closed-hours report (`core.report`) of a span or of each of the last weeks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from oncall.core import pagetext
from oncall.core.incident import Incident
from oncall.core.models import Config, Event
from oncall.core.promises import Promise
from oncall.core.report import Report, report, week_start, weekly
from oncall.core.rota import next_on_call, on_call
from oncall.service.plumbing import Plumbing
from oncall.store import incidents as store
from oncall.store import pages as page_store
from oncall.store import promises as promise_store
from oncall.store import reports
from oncall.store.connection import Connection

_UTC = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class IncidentView:
    id: int
    state: str
    rule: str
    kind: str
    summary: str
    count: int
    created_at: datetime
    updated_at: datetime
    customers: list[str]
    paged: list[dict[str, str]]
    timeline: list[dict[str, str]]
    # What reassurance promised each customer: {"customer", "deadline", "state"}; shown on the
    # status page, not in the API (SPEC §4 fixes its shape; the timeline says kept or broken).
    promises: list[dict[str, str]] = field(default_factory=list)
    # The events the summary counts: a page in another language words them again (the ack page).
    events: tuple[Event, ...] = ()

    @property
    def awaiting_contact(self) -> bool:
        """Acknowledged while a customer still waits for the contact they were promised: the
        pages, the ack page and the status page offer "Customer contacted"."""
        return self.state == "acknowledged" and any(p["state"] == "open" for p in self.promises)

    def to_json(self, *, with_timeline: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "state": self.state,
            "rule": self.rule,
            "kind": self.kind,
            "summary": self.summary,
            "count": self.count,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "customers": self.customers,
            "paged": self.paged,
        }
        if with_timeline:
            out["timeline"] = self.timeline
        return out


@dataclass(frozen=True, slots=True)
class OnCallView:
    rota: str
    person: str | None  # display name; None = nobody on call
    person_id: str | None
    until: datetime | None
    next: str | None
    next_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "rota": self.rota,
            "person": self.person,
            "until": self.until.isoformat() if self.until else None,
            "next": self.next,
            "next_at": self.next_at.isoformat() if self.next_at else None,
        }


def view(inc: Incident, shop_tz: ZoneInfo = _UTC, promises: Sequence[Promise] = ()) -> IncidentView:
    events = inc.live_events or inc.events
    return IncidentView(
        id=inc.id,
        state=inc.state,
        rule=inc.rule,
        kind=inc.kind,
        summary=pagetext.what_happened(events, shop_tz, inc.updated_at),
        count=len(inc.live_events),
        created_at=inc.created_at,
        updated_at=inc.updated_at,
        customers=pagetext.customer_names(events),
        paged=[{"person": p.person, "channel": p.channel, "at": p.at.isoformat()} for p in inc.paged],
        timeline=[{"at": e.at.isoformat(), "what": e.what, "actor": e.actor} for e in inc.timeline],
        promises=[
            {"customer": p.name, "deadline": p.deadline.isoformat(), "state": p.state} for p in promises
        ],
        events=tuple(events),
    )


def who(config: Config, now: datetime) -> list[OnCallView]:
    """Who each rota has on call at `now`, until when, and who is next."""
    out = []
    for name, rota in sorted(config.rotas.items()):
        shift = on_call(rota, now)
        nxt = next_on_call(rota, now)

        def display(pid: str | None) -> str | None:
            if pid is None:
                return None
            p = config.people.get(pid)
            return p.name if p is not None else pid

        out.append(
            OnCallView(
                rota=name,
                person=display(shift.person if shift else None),
                person_id=shift.person if shift else None,
                until=shift.end if shift else None,
                next=display(nxt.person if nxt else None),
                next_at=nxt.start if nxt else None,
            )
        )
    return out


class Views:
    def __init__(self, plumbing: Plumbing) -> None:
        self.plumbing = plumbing

    async def incidents(
        self, open_only: bool = True, *, state: str | None = None, limit: int = 100, before: int | None = None
    ) -> list[IncidentView]:
        def tx(conn: Connection) -> tuple[list[Incident], dict[int, list[Promise]]]:
            rows = store.list_incidents(conn, open_only=open_only, state=state, limit=limit, before=before)
            return rows, promise_store.of_incidents(conn, [i.id for i in rows])

        rows, promises = await self.plumbing.db.transaction(tx)
        tz = self.plumbing.tz()
        return [view(i, tz, promises.get(i.id, ())) for i in rows]

    async def incident(self, incident_id: int) -> IncidentView | None:
        def tx(conn: Connection) -> tuple[Incident | None, list[Promise]]:
            return store.get_incident(conn, incident_id), promise_store.of_incident(conn, incident_id)

        inc, promises = await self.plumbing.db.transaction(tx)
        return view(inc, self.plumbing.tz(), promises) if inc is not None else None

    async def report(self, start: datetime, end: datetime) -> Report:
        """The closed-hours report of [start, end)."""
        found = await self.plumbing.db.transaction(lambda conn: reports.figures(conn, start, end))
        return report(*found, start, end)

    async def weekly(self, now: datetime, weeks: int = 8) -> list[Report]:
        """The report of each of the last `weeks` weeks (shop time), the current one last."""
        tz = self.plumbing.tz()
        start = week_start(now, tz) - timedelta(weeks=weeks)
        found = await self.plumbing.db.transaction(lambda conn: reports.figures(conn, start, now))
        return weekly(*found, now, tz, weeks)

    async def incidents_in_message(self, channel: str, ref: str, person: str) -> list[int]:
        """The incidents a delivered message paged `person` for (a bundle: several)."""
        return await self.plumbing.db.transaction(
            lambda conn: page_store.incidents_in_message(conn, channel, ref, person)
        )

    def who(self, now: datetime) -> list[OnCallView]:
        config = self.plumbing.config()
        return who(config, now) if config is not None else []
