"""Pages in the store: one row per (incident, round, step, person, channel) key, from
`pending` through `queued` (claimed by one instance) and `sending` to `sent`, `failed` or
`unknown` (see `oncall.service.paging`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from oncall.core.incident import Page
from oncall.core.settled import settled_word
from oncall.store.connection import Connection, Row, as_datetime, skip_locked


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
        created_at=as_datetime(row[7]),
        sent_via=row[8],
        sent_at=as_datetime(row[9]) if row[9] is not None else None,
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
# its channel (a bundle holds a page 2 s, a flood's later parts and rate limits a little
# longer; the process that holds it renews the claim each round): it is taken again.
QUEUE_LEASE = timedelta(seconds=120)


def claim_pending_pages(conn: Connection, now: datetime, instance: str, limit: int = 200) -> list[PageRow]:
    """Takes pages never handed to a channel — `pending` ones, and `queued` ones whose claim
    expired — and marks them `queued` by `instance`."""
    rows = conn.fetchall(
        skip_locked(
            conn,
            f"SELECT {_PAGE_FIELDS} FROM pages WHERE state = 'pending' OR (state = 'queued' AND sent_at < ?)"
            " ORDER BY created_at, incident_id, key LIMIT ?",  # a bundle reads in incident order
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


def mark_sending(conn: Connection, keys: Sequence[str], instance: str, now: datetime) -> set[str]:
    """Right before the channel is called: `queued` (by this instance) → `sending`. Returns the
    keys this instance still holds (not the others: another instance took them over, or their
    incidents were acknowledged or resolved meanwhile, perhaps by another process)."""
    held: set[str] = set()
    for key in keys:
        cur = conn.execute(
            "UPDATE pages SET state = 'sending', sent_at = ? WHERE key = ? AND claimed_by = ?"
            " AND state IN ('queued', 'sending')"
            " AND incident_id IN (SELECT id FROM incidents WHERE state = 'triggered')",
            (now, key, instance),
        )
        if cur.rowcount > 0:
            held.add(key)
    return held


def settled_incidents(conn: Connection, ids: Sequence[int]) -> dict[int, str]:
    """Which of these incidents are no longer `triggered`, and their state: nothing more may
    be sent for them."""
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    rows = conn.fetchall(
        f"SELECT id, state, wake_at FROM incidents WHERE id IN ({marks}) AND state <> 'triggered'", list(ids)
    )
    return {int(r[0]): settled_word(str(r[1]), r[2] is not None) for r in rows}


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


def fail_delivered(conn: Connection, ref: str, error: str) -> list[PageRow]:
    """The pages delivered as `ref` that the provider reported undelivered afterwards (an SMS
    status callback): each marked `failed` with `error`."""
    rows = conn.fetchall(f"SELECT {_PAGE_FIELDS} FROM pages WHERE ref = ? AND state = 'sent'", (ref,))
    failed = [replace(_page(r), state="failed", error=error) for r in rows]
    for p in failed:
        conn.execute("UPDATE pages SET state = 'failed', error = ? WHERE key = ?", (error, p.key))
    return failed


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


def incidents_per_ref(conn: Connection, refs: Iterable[str]) -> dict[str, int]:
    """How many incidents each of these delivered messages paged for (a bundle: several)."""
    refs = sorted(refs)
    if not refs:
        return {}
    marks = ", ".join("?" * len(refs))
    rows = conn.fetchall(
        f"SELECT ref, COUNT(DISTINCT incident_id) FROM pages WHERE ref IN ({marks}) AND state = 'sent'"
        " GROUP BY ref",
        refs,
    )
    return {str(r[0]): int(r[1]) for r in rows}


def incidents_in_message(conn: Connection, channel: str, ref: str, person: str) -> list[int]:
    """The incidents whose pages to `person` were delivered as the message `ref` (a bundle:
    several), for a button acting on all of them."""
    rows = conn.fetchall(
        "SELECT DISTINCT incident_id FROM pages WHERE ref = ? AND sent_via = ? AND person = ?"
        " AND state = 'sent' ORDER BY incident_id",
        (ref, channel, person),
    )
    return [int(r[0]) for r in rows]


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
