"""Incidents, pages, routing records and timers in the store (migration 0002).

Every function takes the `Connection` of a transaction (`db.transaction(fn)`), so the
escalation service reads an incident, runs the pure core and writes the result — new state,
timer and page records — in one transaction. On PostgreSQL, work that several instances could
race for is claimed with `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from oncall.core.incident import OPEN_STATES, Entry, Incident, Page, Paged
from oncall.core.models import Customer, Event, Order, Ticket
from oncall.store.database import Connection, Row
from oncall.store.events import COLUMNS, event_from_row

_FIELDS = "id, data, events"


# ---------------------------------------------------------------------------------------------
# JSON codec of an incident


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _pdt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _event_json(e: Event) -> dict[str, Any]:
    c, o, t = e.customer, e.order, e.ticket
    return {
        "id": e.id,
        "source": e.source,
        "kind": e.kind,
        "dedup_key": e.dedup_key,
        "received_at": _dt(e.received_at),
        "occurred_at": _dt(e.occurred_at),
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
    return json.dumps(
        {
            "rule": inc.rule,
            "group_key": inc.group_key,
            "state": inc.state,
            "created_at": _dt(inc.created_at),
            "updated_at": _dt(inc.updated_at),
            "policy": inc.policy,
            "threshold": inc.threshold,
            "cancel_on": list(inc.cancel_on),
            "auto_resolve": inc.auto_resolve,
            "reassure": inc.reassure,
            "cancelled": sorted(inc.cancelled),
            "wake_at": _dt(inc.wake_at),
            "round": inc.round,
            "step_index": inc.step_index,
            "cycle": inc.cycle,
            "paged": [[p.person, p.channel, _dt(p.at), p.step, p.round] for p in inc.paged],
            "timeline": [[_dt(e.at), e.what, e.actor] for e in inc.timeline],
            "acknowledged_by": inc.acknowledged_by,
            "resolved_by": inc.resolved_by,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def events_to_json(events: Sequence[Event]) -> str:
    return json.dumps([_event_json(e) for e in events], ensure_ascii=False, separators=(",", ":"))


def incident_from_json(incident_id: int, text: str, events: str) -> Incident:
    """The incident from its two documents: `data` (state, timeline, …) and `events`, kept
    apart so that a timer firing rewrites only the first."""
    d = json.loads(text)
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
        events=tuple(_event_from(e) for e in json.loads(events)),
        cancelled=frozenset(d["cancelled"]),
        wake_at=_pdt(d["wake_at"]),
        round=d["round"],
        step_index=d["step_index"],
        cycle=d.get("cycle", 0),
        paged=tuple(Paged(p[0], p[1], datetime.fromisoformat(p[2]), p[3], p[4]) for p in d["paged"]),
        timeline=tuple(Entry(datetime.fromisoformat(e[0]), e[1], e[2]) for e in d["timeline"]),
        acknowledged_by=d["acknowledged_by"],
        resolved_by=d["resolved_by"],
    )


def _from_row(row: Row) -> Incident:
    return incident_from_json(int(row[0]), row[1], row[2])


def _locked(conn: Connection, sql: str) -> str:
    # Several instances on PostgreSQL: each takes rows the others are not working on.
    return sql + " FOR UPDATE SKIP LOCKED" if conn.dialect == "postgresql" else sql


# ---------------------------------------------------------------------------------------------
# incidents


def subject_keys(event: Event) -> list[str]:
    """What a later event may refer to this one by (cancel_on, ticket updates)."""
    keys = []
    if event.order.id:
        keys.append(f"order:{event.order.id}")
    if event.customer.email:
        keys.append(f"email:{event.customer.email.strip().lower()}")
    phone = "".join(c for c in event.customer.phone or "" if c.isdigit())
    if phone:
        keys.append(f"phone:{phone}")
    if event.ticket.id:
        keys.append(f"ticket:{event.ticket.id}")
    return keys


def open_key(rule: str, group_key: str) -> str:
    return f"{rule}\x1f{group_key}"


def new_incident_id(conn: Connection, rule: str, group_key: str, now: datetime) -> int | None:
    """Reserves the id of a new incident for (rule, group); `save_incident` fills it in. None
    when another instance has just opened one for the group (join that one instead)."""
    row = conn.fetchone(
        "INSERT INTO incidents (rule, group_key, state, open_key, created_at, updated_at, data)"
        " VALUES (?, ?, 'held', ?, ?, ?, '{}') ON CONFLICT (open_key) DO NOTHING RETURNING id",
        (rule, group_key, open_key(rule, group_key), now, now),
    )
    return int(row[0]) if row is not None else None


_SAVE = (
    "UPDATE incidents SET state = ?, open_key = ?, updated_at = ?, wake_at = ?, data = ?,"
    " version = version + 1 WHERE id = ?"
)
# An open incident keeps its open key: not rewriting it spares the unique index (timers).
_SAVE_OPEN = (
    "UPDATE incidents SET state = ?, updated_at = ?, wake_at = ?, data = ?,"
    " version = version + 1 WHERE id = ?"
)


def _save_params(inc: Incident) -> tuple[Any, ...]:
    key = open_key(inc.rule, inc.group_key) if inc.is_open else None
    return (inc.state, key, inc.updated_at, inc.wake_at, incident_to_json(inc), inc.id)


def save_incident(conn: Connection, inc: Incident, *, index: bool = True) -> None:
    """Writes the incident; `index` when events were added (a timer or an ack adds none): their
    document is rewritten and their subject keys recorded."""
    conn.execute(_SAVE, _save_params(inc))
    if not index:
        return
    conn.execute(
        "UPDATE incidents SET events = ?, version = version + 1 WHERE id = ?",
        (events_to_json(inc.events), inc.id),
    )
    if not inc.is_open:
        return
    keys = {k for e in inc.events for k in subject_keys(e)}
    if keys:
        conn.executemany(
            "INSERT INTO incident_keys (key, incident_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [(k, inc.id) for k in sorted(keys)],
        )


def save_incidents(conn: Connection, incidents: Sequence[Incident]) -> None:
    """Writes many incidents whose events did not change (timers firing), in two statements."""
    still_open = [
        (i.state, i.updated_at, i.wake_at, incident_to_json(i), i.id) for i in incidents if i.is_open
    ]
    closed = [_save_params(i) for i in incidents if not i.is_open]
    if still_open:
        conn.executemany(_SAVE_OPEN, still_open)
    if closed:
        conn.executemany(_SAVE, closed)


def get_incident(conn: Connection, incident_id: int, *, lock: bool = False) -> Incident | None:
    """`lock` (an ack): waits for another instance working on it, e.g. firing its step."""
    sql = f"SELECT {_FIELDS} FROM incidents WHERE id = ? AND data <> '{{}}'"
    if lock and conn.dialect == "postgresql":
        sql += " FOR UPDATE"  # not SKIP LOCKED: that would answer "there is no incident"
    row = conn.fetchone(sql, (incident_id,))
    return _from_row(row) if row is not None else None


def find_open(conn: Connection, rule: str, group_key: str) -> Incident | None:
    sql = f"SELECT {_FIELDS} FROM incidents WHERE open_key = ?"
    if conn.dialect == "postgresql":
        sql += " FOR UPDATE"  # two instances joining events to one incident take turns
    row = conn.fetchone(sql, (open_key(rule, group_key),))
    return _from_row(row) if row is not None else None


def open_incidents_about(conn: Connection, keys: Iterable[str]) -> list[Incident]:
    """Open incidents holding an event with any of these subject keys."""
    keys = list(keys)
    if not keys:
        return []
    marks = ", ".join("?" * len(keys))
    states = ", ".join(f"'{s}'" for s in sorted(OPEN_STATES))
    rows = conn.fetchall(
        f"SELECT {_FIELDS} FROM incidents WHERE state IN ({states}) AND id IN"
        f" (SELECT incident_id FROM incident_keys WHERE key IN ({marks})) ORDER BY id",
        keys,
    )
    return [_from_row(r) for r in rows]


Versioned = dict[int, tuple[int, Incident]]  # id -> (version, incident)


def read_due(conn: Connection, until: datetime, limit: int = 1000) -> Versioned:
    """Incidents whose timer falls due by `until`, read ahead (no lock) with their versions."""
    rows = conn.fetchall(
        f"SELECT {_FIELDS}, version FROM incidents WHERE wake_at <= ? ORDER BY wake_at, id LIMIT ?",
        (until, limit),
    )
    return {int(r[0]): (int(r[3]), _from_row(r)) for r in rows}


def due_incidents(
    conn: Connection, now: datetime, limit: int = 500, read_ahead: Versioned | None = None
) -> list[Incident]:
    """Incidents whose timer is due at `now`, claimed (PostgreSQL: locked, skipping those
    another instance holds). A `read_ahead` copy is used when its version is still current,
    which spares parsing the incident while the timer is late."""
    if not read_ahead:
        rows = conn.fetchall(
            _locked(conn, f"SELECT {_FIELDS} FROM incidents WHERE wake_at <= ? ORDER BY wake_at, id LIMIT ?"),
            (now, limit),
        )
        return [_from_row(r) for r in rows]
    due = conn.fetchall(
        _locked(conn, "SELECT id, version FROM incidents WHERE wake_at <= ? ORDER BY wake_at, id LIMIT ?"),
        (now, limit),
    )
    out: dict[int, Incident] = {}
    stale: list[int] = []
    for row in due:
        iid, version = int(row[0]), int(row[1])
        cached = read_ahead.get(iid)
        if cached is not None and cached[0] == version:
            out[iid] = cached[1]
        else:
            stale.append(iid)
    for start in range(0, len(stale), 500):
        chunk = stale[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for r in conn.fetchall(f"SELECT {_FIELDS} FROM incidents WHERE id IN ({marks})", chunk):
            out[int(r[0])] = _from_row(r)
    return [out[int(row[0])] for row in due if int(row[0]) in out]


def next_due(conn: Connection) -> datetime | None:
    """The earliest time any timer (incident or named) falls due."""
    a = conn.fetchone("SELECT MIN(wake_at) FROM incidents WHERE wake_at IS NOT NULL")
    b = conn.fetchone("SELECT MIN(due) FROM timers")
    c = conn.fetchone("SELECT MIN(sent_at) FROM pages WHERE state = 'queued'")
    times = [_as_dt(r[0]) for r in (a, b) if r is not None and r[0] is not None]
    if c is not None and c[0] is not None:
        times.append(_as_dt(c[0]) + QUEUE_LEASE)  # when a dead claim may be taken again
    return min(times, default=None)


def _as_dt(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def list_incidents(
    conn: Connection,
    *,
    open_only: bool = True,
    state: str | None = None,
    limit: int = 100,
    before: int | None = None,
) -> list[Incident]:
    """Newest first; `before` is the cursor (an id) of the next page."""
    where = ["data <> '{}'"]
    params: list[Any] = []
    if state is not None:
        where.append("state = ?")
        params.append(state)
    elif open_only:
        where.append("state IN (" + ", ".join(f"'{s}'" for s in sorted(OPEN_STATES)) + ")")
    if before is not None:
        where.append("id < ?")
        params.append(before)
    rows = conn.fetchall(
        f"SELECT {_FIELDS} FROM incidents WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
        [*params, limit],
    )
    return [_from_row(r) for r in rows]


def deferred_incidents(conn: Connection) -> list[Incident]:
    rows = conn.fetchall(
        _locked(conn, f"SELECT {_FIELDS} FROM incidents WHERE state = 'deferred' ORDER BY id")
    )
    return [_from_row(r) for r in rows]


# ---------------------------------------------------------------------------------------------
# pages


@dataclass(frozen=True, slots=True)
class PageRow:
    key: str
    incident_id: int
    person: str
    channel: str
    step: int
    round: int
    state: str  # pending | queued | sending | sent | failed | unknown
    created_at: datetime
    sent_via: str | None = None
    sent_at: datetime | None = None
    ref: str | None = None
    error: str | None = None


_PAGE_FIELDS = (
    "key, incident_id, person, channel, step, round, state, created_at, sent_via, sent_at, ref, error"
)


def _page(row: Row) -> PageRow:
    return PageRow(
        key=row[0],
        incident_id=int(row[1]),
        person=row[2],
        channel=row[3],
        step=int(row[4]),
        round=int(row[5]),
        state=row[6],
        created_at=_as_dt(row[7]),
        sent_via=row[8],
        sent_at=_as_dt(row[9]) if row[9] is not None else None,
        ref=row[10],
        error=row[11],
    )


_ADD_PAGE = (
    "INSERT INTO pages (key, incident_id, person, channel, step, round, state, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT (key) DO NOTHING"
)


def add_pages(conn: Connection, incident_id: int, pages: Sequence[Page], now: datetime) -> None:
    """Records pages as `pending`; a key already recorded is left alone (never sent twice)."""
    if pages:
        conn.executemany(
            _ADD_PAGE, [(p.key, incident_id, p.person, p.channel, p.step, p.round, now) for p in pages]
        )


def add_pages_many(conn: Connection, pages: Sequence[tuple[int, Page]], now: datetime) -> None:
    """`add_pages` for several incidents at once."""
    if pages:
        conn.executemany(
            _ADD_PAGE, [(p.key, iid, p.person, p.channel, p.step, p.round, now) for iid, p in pages]
        )


# A page `queued` longer than this was claimed by a process that died before handing it to
# its channel (bundling holds a page up to 60 s, rate limits a little longer): it is taken again.
QUEUE_LEASE = timedelta(seconds=120)


def claim_pending_pages(conn: Connection, now: datetime, instance: str, limit: int = 200) -> list[PageRow]:
    """Takes pages never handed to a channel — `pending` ones, and `queued` ones whose claim
    expired — and marks them `queued` by `instance`."""
    rows = conn.fetchall(
        _locked(
            conn,
            f"SELECT {_PAGE_FIELDS} FROM pages WHERE state = 'pending' OR (state = 'queued' AND sent_at < ?)"
            " ORDER BY created_at, key LIMIT ?",
        ),
        (now - QUEUE_LEASE, limit),
    )
    claimed = [_page(r) for r in rows]
    for p in claimed:
        conn.execute(
            "UPDATE pages SET state = 'queued', claimed_by = ?, sent_at = ? WHERE key = ?",
            (instance, now, p.key),
        )
    return claimed


def mark_sending(conn: Connection, keys: Sequence[str], instance: str, now: datetime) -> int:
    """Right before the channel is called: `queued` (by this instance) → `sending`. Returns how
    many of `keys` this instance still holds (0: another instance took them over, or their
    incidents were acknowledged or resolved meanwhile, perhaps by another process)."""
    n = 0
    for key in keys:
        cur = conn.execute(
            "UPDATE pages SET state = 'sending', sent_at = ? WHERE key = ? AND claimed_by = ?"
            " AND state IN ('queued', 'sending')"
            " AND incident_id IN (SELECT id FROM incidents WHERE state = 'triggered')",
            (now, key, instance),
        )
        n += max(0, cur.rowcount)
    return n


def settled_incidents(conn: Connection, ids: Sequence[int]) -> dict[int, str]:
    """Which of these incidents are no longer `triggered`, and their state: nothing more may
    be sent for them."""
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    rows = conn.fetchall(
        f"SELECT id, state, wake_at FROM incidents WHERE id IN ({marks}) AND state <> 'triggered'", list(ids)
    )
    return {int(r[0]): "snoozed" if r[1] == "acknowledged" and r[2] is not None else str(r[1]) for r in rows}


def finish_page(
    conn: Connection, key: str, *, ok: bool, sent_via: str, ref: str | None, error: str | None, now: datetime
) -> None:
    conn.execute(
        "UPDATE pages SET state = ?, sent_via = ?, ref = ?, error = ?, sent_at = ? WHERE key = ?",
        ("sent" if ok else "failed", sent_via, ref, error, now, key),
    )


def unclaim_page(conn: Connection, key: str, instance: str, *, sending: bool = False) -> None:
    """A claimed page that never reached its channel goes back to `pending`; `sending` when
    it may be marked so but its channel was surely not called (the mark's commit was not
    confirmed)."""
    states = "('queued', 'sending')" if sending else "('queued')"
    conn.execute(
        "UPDATE pages SET state = 'pending', claimed_by = NULL, sent_at = NULL"
        f" WHERE key = ? AND state IN {states} AND claimed_by = ?",
        (key, instance),
    )


def release_queued(conn: Connection) -> int:
    """Every claimed page that never reached its channel goes back to `pending`: at the start
    of the only instance (SQLite), whatever claimed them is dead."""
    cur = conn.execute(
        "UPDATE pages SET state = 'pending', claimed_by = NULL, sent_at = NULL WHERE state = 'queued'"
    )
    return max(0, int(cur.rowcount))


def interrupted_pages(conn: Connection, before: datetime) -> list[PageRow]:
    """Pages whose channel call started before `before` and never finished: the process died
    during the call. They are marked `unknown` and not re-sent."""
    rows = conn.fetchall(
        f"SELECT {_PAGE_FIELDS} FROM pages WHERE state = 'sending' AND sent_at < ? ORDER BY key", (before,)
    )
    pages = [_page(r) for r in rows]
    for p in pages:
        conn.execute("UPDATE pages SET state = 'unknown' WHERE key = ? AND state = 'sending'", (p.key,))
    return pages


def pages_of(conn: Connection, incident_id: int) -> list[PageRow]:
    rows = conn.fetchall(
        f"SELECT {_PAGE_FIELDS} FROM pages WHERE incident_id = ? ORDER BY created_at, key", (incident_id,)
    )
    return [_page(r) for r in rows]


def refs_still_paging(conn: Connection, refs: Iterable[str], incident_id: int) -> set[str]:
    """Which of these delivered messages (bundles) also carry a page of another incident that
    is still triggered."""
    refs = sorted(refs)
    if not refs:
        return set()
    marks = ", ".join("?" * len(refs))
    rows = conn.fetchall(
        "SELECT DISTINCT p.ref FROM pages p JOIN incidents i ON i.id = p.incident_id"
        f" WHERE p.ref IN ({marks}) AND p.state = 'sent' AND p.incident_id <> ? AND i.state = 'triggered'",
        [*refs, incident_id],
    )
    return {str(r[0]) for r in rows}


def newest_incident_paged_to(conn: Connection, person: str) -> int | None:
    """The incident a bare "ack" means: the newest paged to `person` that still pages (is
    triggered), else the newest paged to them at all (the answer then says why nothing changed)."""
    row = conn.fetchone(
        "SELECT p.incident_id FROM pages p JOIN incidents i ON i.id = p.incident_id WHERE p.person = ?"
        " ORDER BY CASE WHEN i.state = 'triggered' THEN 0 ELSE 1 END, p.created_at DESC,"
        " p.incident_id DESC LIMIT 1",
        (person,),
    )
    return int(row[0]) if row is not None else None


# ---------------------------------------------------------------------------------------------
# events: routing


def claim_unrouted(conn: Connection, limit: int = 200) -> list[Event]:
    rows = conn.fetchall(
        _locked(conn, f"SELECT id, {COLUMNS} FROM events WHERE routed_at IS NULL ORDER BY id LIMIT ?"),
        (limit,),
    )
    return [event_from_row(r) for r in rows]


def record_route(
    conn: Connection,
    event_id: int,
    rule: str,
    action: str,
    incident_id: int | None,
    note: str | None,
    now: datetime,
) -> None:
    conn.execute(
        "INSERT INTO event_routes (event_id, rule, action, incident_id, note, routed_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (event_id, rule, action, incident_id, note, now),
    )


@dataclass(frozen=True, slots=True)
class RouteRow:
    event_id: int
    rule: str
    action: str
    note: str | None
    routed_at: datetime
    summary: str


def maintenance_routes(conn: Connection, limit: int = 100) -> list[RouteRow]:
    """Events stored during a maintenance window (listed, nobody paged), newest first."""
    rows = conn.fetchall(
        "SELECT r.event_id, r.rule, r.action, r.note, r.routed_at, e.summary FROM event_routes r"
        " JOIN events e ON e.id = r.event_id WHERE r.action = 'maintenance' ORDER BY r.event_id DESC LIMIT ?",
        (limit,),
    )
    return [RouteRow(int(r[0]), r[1], r[2], r[3], _as_dt(r[4]), r[5]) for r in rows]


# ---------------------------------------------------------------------------------------------
# named timers


def set_timer(conn: Connection, name: str, due: datetime) -> None:
    """Schedules `name` at `due`, or earlier if it is already due sooner."""
    row = conn.fetchone("SELECT due FROM timers WHERE name = ?", (name,))
    if row is None:
        conn.execute("INSERT INTO timers (name, due) VALUES (?, ?) ON CONFLICT DO NOTHING", (name, due))
    elif _as_dt(row[0]) > due:
        conn.execute("UPDATE timers SET due = ? WHERE name = ?", (due, name))


def take_timer(conn: Connection, name: str, now: datetime) -> datetime | None:
    """Removes and returns the due time of `name` if it is due at `now`."""
    row = conn.fetchone(_locked(conn, "SELECT due FROM timers WHERE name = ? AND due <= ?"), (name, now))
    if row is None:
        return None
    conn.execute("DELETE FROM timers WHERE name = ?", (name,))
    return _as_dt(row[0])
