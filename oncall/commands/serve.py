"""`oncall serve`: the web app (and, through its lifespan hooks, the scheduler) under uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys

from oncall.settings import Settings
from oncall.store import StoreError, open_database

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from oncall.web.app import create_app

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    settings = Settings()
    if not args.no_migrate:
        # Before listening, so that a schema error stops the release instead of every webhook.
        db = open_database(settings.database_url)
        try:
            applied = db.migrate()
        except StoreError as exc:
            logging.getLogger("oncall").error("cannot migrate the database: %s", exc)
            return 1
        finally:
            db.close()
        if applied:
            logging.getLogger("oncall").info("database migrations applied: %s", ", ".join(applied))
    app = create_app(settings, migrate=False)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,  # keep our logging set-up
        access_log=False,  # one structured line per webhook is logged by the app itself
        loop="auto",  # uvloop when installed
        http="auto",  # httptools when installed
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    return 0
