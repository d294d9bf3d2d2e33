"""`oncall migrate`: creates or upgrades the database schema."""

from __future__ import annotations

import argparse
import sys

from oncall.settings import Settings
from oncall.store import StoreError, open_database


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    db = open_database(settings.database_url)
    try:
        applied = db.migrate()
    except StoreError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    finally:
        db.close()
    where = f"{db.dialect} {db.describe()}"
    if applied:
        print(f"applied {len(applied)} migration(s) to {where}: {', '.join(applied)}")
    else:
        print(f"{where} is up to date")
    return 0
