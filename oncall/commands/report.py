"""`oncall report [--since WHEN] [--json]`: the closed-hours report (SPEC §5, §6), as the opening
digest ends with it — incidents, pages, median and worst time to acknowledge, customers
reassured, promises kept and broken.

Without `--since` it covers the last closed hours: while the desk is closed, those since it
closed; while it is open, the closed hours that ended when it last opened (what that opening's
digest reported). With `--since WHEN` it covers WHEN until now. It reads the same store as
`oncall serve` (ONCALL_DATABASE_URL) and changes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from oncall.clock import Clock, system_clock
from oncall.commands.when import parse_when
from oncall.commands.who import load
from oncall.core.incident import Incident
from oncall.core.promises import Promise
from oncall.core.report import closed_period, report
from oncall.settings import Settings
from oncall.store import StoreError, open_database, reports


def run(args: argparse.Namespace, clock: Clock = system_clock) -> int:
    settings = Settings()
    config = load(settings)
    if config is None:
        return 1
    tz = config.rules.shop.timezone
    now = clock()
    if args.since is not None:
        try:
            start = parse_when(args.since, tz)
        except ValueError as exc:
            print(f"error: --since: {exc}", file=sys.stderr)
            return 1
        if start >= now:
            print(f"error: --since: {args.since} is not in the past", file=sys.stderr)
            return 1
        end = now
    else:
        start, end = closed_period(config.rules.business_hours, tz, now)
    try:
        figures = _read(settings, start, end)
    except StoreError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    result = report(*figures, start, end)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print("\n".join(result.lines(tz)))
    return 0


def _read(settings: Settings, start: datetime, end: datetime) -> tuple[list[Incident], list[Promise]]:
    db = open_database(settings.database_url)
    try:
        pending = db.pending_migrations()
        if pending:
            n = len(pending)
            raise StoreError(
                f"the database is not set up ({n} migration(s) pending): run `oncall migrate` first"
            )
        return db.transaction_sync(lambda conn: reports.figures(conn, start, end))
    finally:
        db.close()
