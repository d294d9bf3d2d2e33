"""Numbered SQL migrations: `NNNN_name.sql`, or per dialect `NNNN_name.sqlite.sql` /
`NNNN_name.postgresql.sql`. Each is applied once, in its own transaction, and recorded in
`schema_migrations`. On PostgreSQL an advisory lock keeps two instances starting at once from
applying the same file twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from oncall.clock import Clock, system_clock
from oncall.store.connection import Connection, MigrationError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(sqlite|postgresql))?\.sql$")
_LOCK_ID = 0x0_0CA11  # any constant shared by every oncall instance


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path


def available(dialect: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations for `dialect`, in order; a dialect-specific file beats a generic one."""
    chosen: dict[int, tuple[bool, Migration]] = {}
    for path in directory.glob("*.sql"):
        m = _NAME.match(path.name)
        if m is None:
            continue
        version, name, only = int(m.group(1)), m.group(2), m.group(3)
        if only is not None and only != dialect:
            continue
        specific = only is not None
        previous = chosen.get(version)
        if previous is not None and previous[0] == specific:
            clash = f"{previous[1].path.name}, {path.name}"
            raise MigrationError(f"two migrations numbered {version:04d}: {clash}")
        if previous is None or specific:
            chosen[version] = (specific, Migration(version, f"{version:04d}_{name}", path))
    return [chosen[v][1] for v in sorted(chosen)]


def _ensure_table(conn: Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )


def _applied(conn: Connection) -> set[int]:
    return {int(row[0]) for row in conn.fetchall("SELECT version FROM schema_migrations")}


def pending(conn: Connection) -> list[str]:
    _ensure_table(conn)
    done = _applied(conn)
    return [m.name for m in available(conn.dialect) if m.version not in done]


def apply_migrations(conn: Connection, clock: Clock = system_clock) -> list[str]:
    """Runs on the writer thread with the raw connection in autocommit mode; `clock` stamps
    each migration's `applied_at`."""
    raw = conn.raw
    if conn.dialect == "postgresql":
        raw.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
    try:
        _ensure_table(conn)
        done = _applied(conn)
        applied: list[str] = []
        for migration in available(conn.dialect):
            if migration.version in done:
                continue
            script = migration.path.read_text(encoding="utf-8")
            now = clock().isoformat()
            try:
                if conn.dialect == "sqlite":
                    # executescript runs the whole file; BEGIN/COMMIT make it all-or-nothing.
                    raw.executescript(
                        f"BEGIN IMMEDIATE;\n{script}\n;INSERT INTO schema_migrations VALUES "
                        f"({migration.version}, '{migration.name}', '{now}');\nCOMMIT;"
                    )
                else:
                    with raw.transaction():
                        raw.execute(script)
                        raw.execute(
                            "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                            (migration.version, migration.name, now),
                        )
            except Exception as exc:
                if conn.dialect == "sqlite" and raw.in_transaction:
                    raw.execute("ROLLBACK")
                raise MigrationError(f"migration {migration.path.name} failed: {exc}") from exc
            applied.append(migration.name)
        return applied
    finally:
        if conn.dialect == "postgresql":
            raw.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
