"""Incidents in the store (migration 0002).

Every function takes the `Connection` of a transaction (`db.transaction(fn)`), so the
escalation service reads an incident, runs the pure core and writes the result — new state,
timer and page records — in one transaction. On PostgreSQL, work that several instances could
race for is claimed with `FOR UPDATE SKIP LOCKED`. Pages, routing records and timers have their
own modules (`pages`, `routes`, `timers`); the names used with `incidents` are re-exported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from oncall.core.incident import OPEN_STATES, Entry, Incident, subject_keys
from oncall.store.codec import append_entries, events_to_json, incident_to_json
from oncall.store.codec import incident_from_row as _from_row
from oncall.store.connection import Connection, skip_locked
from oncall.store.pages import (
    PageRow,
    add_pages,
    add_pages_many,
    claim_pending_pages,
    mark_sending,
    pages_of,
)
from oncall.store.routes import maintenance_routes

__all__ = [
    "PageRow",
    "Versioned",
    "add_pages",
    "add_pages_many",
    "append_timeline",
    "claim_pending_pages",
    "deferred_incidents",
    "due_incidents",
    "find_open",
    "get_incident",
    "index_keys",
    "insert_incident",
    "key_index",
    "list_incidents",
    "maintenance_routes",
    "mark_sending",
    "new_incident_id",
    "next_incident_id",
    "open_groups",
    "open_incidents_about",
    "open_incidents_in",
    "pages_of",
    "read_due",
    "save_incident",
    "save_incidents",
]

_FIELDS = "id, data, events"

# ---------------------------------------------------------------------------------------------
# incidents


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


def next_incident_id(conn: Connection) -> int:
    """SQLite: the id its next new incident gets (ids come from a sequence, never reused), as
    long as this transaction, which holds the only write lock, inserts none meanwhile."""
    row = conn.fetchone("SELECT seq FROM sqlite_sequence WHERE name = 'incidents'")
    return int(row[0]) + 1 if row is not None else 1


_INSERT = (
    "INSERT INTO incidents (rule, group_key, state, open_key, created_at, updated_at, wake_at, data,"
    " events, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT (open_key) DO NOTHING"
)


def insert_incident(conn: Connection, inc: Incident, now: datetime, *, index: bool = True) -> int | None:
    """SQLite: a new incident written whole, in one statement — the row `new_incident_id` and
    `save_incident` write together (created at `now`, version 1). Its id is the store's, which
    `inc` was opened with when it is `next_incident_id`; the caller checks. None when the group
    has an open incident after all (nothing written). Not `index`: the caller records its
    subject keys (`index_keys`, with others)."""
    key = open_key(inc.rule, inc.group_key) if inc.is_open else None
    cursor = conn.execute(
        _INSERT,
        (
            inc.rule, inc.group_key, inc.state, key, now, inc.updated_at, inc.wake_at,
            incident_to_json(inc), events_to_json(inc.events),
        ),
    )  # fmt: skip
    if cursor.rowcount != 1:
        return None
    iid = int(cursor.lastrowid)
    if index and iid == inc.id and inc.is_open:
        _index(conn, iid, {k for e in inc.events for k in subject_keys(e)})
    return iid


# The open key is written once, by `new_incident_id`, and only ever cleared (when the incident
# closes): a save never sets it, so no save can take the group's place from a newer incident.
_SAVE_CLOSED = (
    "UPDATE incidents SET state = ?, open_key = NULL, updated_at = ?, wake_at = ?, data = ?,"
    " version = version + 1 WHERE id = ?"
)
_SAVE_OPEN = (
    "UPDATE incidents SET state = ?, updated_at = ?, wake_at = ?, data = ?,"
    " version = version + 1 WHERE id = ?"
)


# The same with the events document, for a save that added events (one statement, not two).
_SAVE_OPEN_EVENTS = _SAVE_OPEN.replace("data = ?,", "data = ?, events = ?,")
_SAVE_CLOSED_EVENTS = _SAVE_CLOSED.replace("data = ?,", "data = ?, events = ?,")


def _save_params(inc: Incident) -> tuple[Any, ...]:
    return (inc.state, inc.updated_at, inc.wake_at, incident_to_json(inc), inc.id)


def save_incident(conn: Connection, inc: Incident, *, index: bool = True) -> None:
    """Writes the incident; `index` when events were added (a timer or an ack adds none): their
    document is rewritten and their subject keys recorded."""
    if not index:
        conn.execute(_SAVE_OPEN if inc.is_open else _SAVE_CLOSED, _save_params(inc))
        return
    conn.execute(
        _SAVE_OPEN_EVENTS if inc.is_open else _SAVE_CLOSED_EVENTS,
        (inc.state, inc.updated_at, inc.wake_at, incident_to_json(inc), events_to_json(inc.events), inc.id),
    )
    if not inc.is_open:
        return
    _index(conn, inc.id, {k for e in inc.events for k in subject_keys(e)})


def _index(conn: Connection, incident_id: int, keys: set[str]) -> None:
    """Records the subject keys of an open incident's events."""
    if keys:
        # One statement for all of them (an executemany is a round trip per row on PostgreSQL).
        values = ", ".join("(?, ?)" for _ in keys)
        conn.execute(
            f"INSERT INTO incident_keys (key, incident_id) VALUES {values} ON CONFLICT DO NOTHING",
            [v for k in sorted(keys) for v in (k, incident_id)],
        )


def index_keys(conn: Connection, rows: Sequence[tuple[str, int]]) -> None:
    """Records (subject key, incident id) rows, as `save_incident` does for one incident."""
    if rows:
        conn.executemany(
            "INSERT INTO incident_keys (key, incident_id) VALUES (?, ?) ON CONFLICT DO NOTHING", rows
        )


def open_groups(conn: Connection, keys: Iterable[str]) -> set[str]:
    """Which of these open keys (`open_key(rule, group)`) an open incident holds."""
    keys = list(keys)
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        found.update(
            r[0] for r in conn.fetchall(f"SELECT open_key FROM incidents WHERE open_key IN ({marks})", chunk)
        )
    return found


def key_index(conn: Connection, keys: Iterable[str]) -> dict[str, set[int]]:
    """The incidents holding an event with each of these subject keys (open or not)."""
    keys = list(keys)
    found: dict[str, set[int]] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for r in conn.fetchall(f"SELECT key, incident_id FROM incident_keys WHERE key IN ({marks})", chunk):
            found.setdefault(r[0], set()).add(int(r[1]))
    return found


def save_incidents(conn: Connection, incidents: Sequence[Incident]) -> None:
    """Writes many incidents whose events did not change (timers firing), in two statements."""
    still_open = [_save_params(i) for i in incidents if i.is_open]
    closed = [_save_params(i) for i in incidents if not i.is_open]
    if still_open:
        conn.executemany(_SAVE_OPEN, still_open)
    if closed:
        conn.executemany(_SAVE_CLOSED, closed)


def append_timeline(conn: Connection, incident_id: int, entries: Sequence[Entry]) -> bool:
    """Adds `entries` to an incident's timeline and changes nothing else: not its state, its
    timer or its place in its group, which another instance may have changed since this one
    last read it (a note is written after a send or a reassurance, long after that read). The
    row is read locked (PostgreSQL), so a change committed meanwhile is kept, not overwritten.
    False when there is no such incident."""
    sql = "SELECT data FROM incidents WHERE id = ? AND data <> '{}'"
    if conn.dialect == "postgresql":
        sql += " FOR UPDATE"
    row = conn.fetchone(sql, (incident_id,))
    if row is None:
        return False
    conn.execute(
        "UPDATE incidents SET data = ?, version = version + 1 WHERE id = ?",
        (append_entries(row[0], entries), incident_id),
    )
    return True


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


def open_incidents_about(
    conn: Connection, keys: Iterable[str], but: Iterable[int] = (), cancel_on: str | None = None
) -> list[Incident]:
    """Open incidents holding an event with any of these subject keys (`but` those ids: the
    caller has them in hand). `cancel_on`: only those that may cancel on that kind — a text
    match on the stored document, so a superset the caller still checks; it spares decoding
    every incident of a customer with a thousand failures for each new one."""
    keys = list(keys)
    if not keys:
        return []
    marks = ", ".join("?" * len(keys))
    skip = set(but)
    if skip:
        # Which incidents first (an index read), and the incidents themselves only when there
        # are others than those in hand: mostly there are none.
        found = conn.fetchall(f"SELECT DISTINCT incident_id FROM incident_keys WHERE key IN ({marks})", keys)
        ids = sorted({int(r[0]) for r in found} - skip)
        if not ids:
            return []
        return open_incidents_in(conn, ids, cancel_on)
    where = f"id IN (SELECT incident_id FROM incident_keys WHERE key IN ({marks}))"
    return _open_where(conn, where, list(keys), cancel_on)


def open_incidents_in(conn: Connection, ids: Iterable[int], cancel_on: str | None = None) -> list[Incident]:
    """`open_incidents_about` for the incidents holding the keys, when the caller knows them."""
    where = f"id IN ({', '.join(str(int(i)) for i in sorted(ids))})"
    return _open_where(conn, where, [], cancel_on)


_OPEN = ", ".join(f"'{s}'" for s in sorted(OPEN_STATES))


def _open_where(conn: Connection, where: str, params: list[Any], cancel_on: str | None) -> list[Incident]:
    if cancel_on is not None:
        where += """ AND data LIKE ? ESCAPE '!'"""
        kind = cancel_on.replace("!", "!!").replace("%", "!%").replace("_", "!_")
        params.append(f'%"cancel_on":[%"{kind}"%')
    sql = f"SELECT {_FIELDS} FROM incidents WHERE state IN ({_OPEN}) AND {where} ORDER BY id"
    if conn.dialect == "postgresql":
        sql += " FOR UPDATE"  # they are changed from this copy (cancel, ticket solved): no stale write
    rows = conn.fetchall(sql, params)
    return [_from_row(r) for r in rows]


_DUE = "wake_at <= ? ORDER BY wake_at, id LIMIT ?"
Versioned = dict[int, tuple[int, Incident]]  # id -> (version, incident)


def read_due(conn: Connection, until: datetime, limit: int = 1000) -> Versioned:
    """Incidents whose timer falls due by `until`, read ahead (no lock) with their versions."""
    rows = conn.fetchall(
        f"SELECT {_FIELDS}, version FROM incidents WHERE {_DUE}",
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
            skip_locked(
                conn, f"SELECT {_FIELDS} FROM incidents WHERE wake_at <= ? ORDER BY wake_at, id LIMIT ?"
            ),
            (now, limit),
        )
        return [_from_row(r) for r in rows]
    due = conn.fetchall(
        skip_locked(
            conn, "SELECT id, version FROM incidents WHERE wake_at <= ? ORDER BY wake_at, id LIMIT ?"
        ),
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
        skip_locked(conn, f"SELECT {_FIELDS} FROM incidents WHERE state = 'deferred' ORDER BY id")
    )
    return [_from_row(r) for r in rows]
