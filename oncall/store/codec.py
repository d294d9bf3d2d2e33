"""The JSON codec of an incident: two documents per row, `data` (state, timeline, …) and
`events`, kept apart so that a timer firing rewrites only the first."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from oncall.core.incident import Entry, Incident, Paged
from oncall.core.models import Customer, Event, Order, Ticket
from oncall.store.connection import Row


def _dumps(value: Any) -> str:
    """Compact JSON, non-ASCII as is: `json.dumps(ensure_ascii=False, separators=(",", ":"))`,
    by orjson (the same text for what incidents hold); whatever orjson cannot write (an integer
    over 64 bits) goes the standard library's way. Datetimes are written as `isoformat()`
    writes them; orjson does that in its own code, where a call per datetime cost a flood's
    routing about 7 % (it differs only for offsets with seconds, local mean time before 1900,
    which no clock gives)."""
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_isoformat)


def _isoformat(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _pdt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _event_json(e: Event) -> dict[str, Any]:
    c, o, t = e.customer, e.order, e.ticket
    return {
        "id": e.id,
        "source": e.source,
        "kind": e.kind,
        "dedup_key": e.dedup_key,
        "received_at": e.received_at,
        "occurred_at": e.occurred_at,
        "summary": e.summary,
        "severity": e.severity,
        "customer": [c.name, c.email, c.phone, c.language],
        "order": [o.id, o.number, o.amount, o.currency],
        "ticket": [t.id, t.priority, t.status, t.subject],
        "tags": list(e.tags),
        "external_type": e.external_type,
    }


def _event_from(d: dict[str, Any]) -> Event:
    received = _pdt(d["received_at"])
    assert received is not None
    return Event(
        id=d["id"],
        source=d["source"],
        kind=d["kind"],
        dedup_key=d["dedup_key"],
        received_at=received,
        occurred_at=_pdt(d["occurred_at"]),
        summary=d["summary"],
        severity=d["severity"],
        customer=Customer(*d["customer"]),
        order=Order(*d["order"]),
        ticket=Ticket(*d["ticket"]),
        tags=tuple(d["tags"]),
        external_type=d["external_type"],
    )


def incident_to_json(inc: Incident) -> str:
    return _dumps(
        {
            "rule": inc.rule,
            "group_key": inc.group_key,
            "state": inc.state,
            "created_at": inc.created_at,
            "updated_at": inc.updated_at,
            "policy": inc.policy,
            "threshold": inc.threshold,
            "cancel_on": list(inc.cancel_on),
            "auto_resolve": inc.auto_resolve,
            "reassure": inc.reassure,
            "cancelled": sorted(inc.cancelled),
            "wake_at": inc.wake_at,
            "round": inc.round,
            "step_index": inc.step_index,
            "cycle": inc.cycle,
            "paged": [[p.person, p.channel, p.at, p.step, p.round] for p in inc.paged],
            "timeline": [[e.at, e.what, e.actor] for e in inc.timeline],
            "acknowledged_by": inc.acknowledged_by,
            "resolved_by": inc.resolved_by,
            "acknowledged_at": inc.acknowledged_at,
        }
    )


def append_entries(data: str, entries: Sequence[Entry]) -> str:
    """The `data` document with `entries` added to its timeline, nothing else rewritten."""
    d = _loads(data)
    d["timeline"] += [[e.at, e.what, e.actor] for e in entries]
    return _dumps(d)


def events_to_json(events: Sequence[Event]) -> str:
    return _dumps([_event_json(e) for e in events])


def incident_from_json(incident_id: int, text: str, events: str) -> Incident:
    d = _loads(text)
    created, updated = _pdt(d["created_at"]), _pdt(d["updated_at"])
    assert created is not None and updated is not None
    return Incident(
        id=incident_id,
        rule=d["rule"],
        group_key=d["group_key"],
        state=d["state"],
        created_at=created,
        updated_at=updated,
        policy=d["policy"],
        threshold=d["threshold"],
        cancel_on=tuple(d["cancel_on"]),
        auto_resolve=d["auto_resolve"],
        reassure=d["reassure"],
        events=tuple(_event_from(e) for e in _loads(events)),
        cancelled=frozenset(d["cancelled"]),
        wake_at=_pdt(d["wake_at"]),
        round=d["round"],
        step_index=d["step_index"],
        cycle=d.get("cycle", 0),
        paged=tuple(Paged(p[0], p[1], datetime.fromisoformat(p[2]), p[3], p[4]) for p in d["paged"]),
        timeline=tuple(Entry(datetime.fromisoformat(e[0]), e[1], e[2]) for e in d["timeline"]),
        acknowledged_by=d["acknowledged_by"],
        resolved_by=d["resolved_by"],
        acknowledged_at=_pdt(d.get("acknowledged_at")),  # absent in incidents stored before 0008
    )


def incident_from_row(row: Row) -> Incident:
    return incident_from_json(int(row[0]), row[1], row[2])
