"""`oncall serve`: the web app (and, through its lifespan hooks, the scheduler) under uvicorn."""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
from typing import TYPE_CHECKING

from oncall import logredact
from oncall.clock import system_clock
from oncall.settings import Settings
from oncall.store import StoreError, open_database

if TYPE_CHECKING:
    from fastapi import FastAPI


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from oncall.web.app import create_app
    from oncall.web.quietserver import QuietServer
    from oncall.web.workers import default_count
    from oncall.web.workers import serve as serve_with_workers

    settings = Settings()
    logredact.configure(settings)  # before anything logs; the app re-checks uvicorn's handlers
    if not args.no_migrate:
        # Before listening, so that a schema error stops the release instead of every webhook.
        db = open_database(settings.database_url)
        try:
            applied = db.migrate()
        except StoreError as exc:
            logging.getLogger("oncall").error("cannot migrate the database: %s", " ".join(str(exc).split()))
            return 1
        finally:
            db.close()
        if applied:
            logging.getLogger("oncall").info("database migrations applied: %s", ", ".join(applied))
    # The log format names neither the caller's file and line nor the thread or process: not
    # looking them up saves a third of the cost of each webhook's log line.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    app = create_app(settings, migrate=False, clock=system_clock)
    app.state.startup_hooks.append(_freeze_long_lived)  # last: after the service has started
    workers = args.workers if args.workers is not None else settings.workers
    if workers is None:
        workers = default_count()
    if workers > 0:
        return serve_with_workers(app, args.host, args.port, workers)
    try:
        config = uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_config=None,  # keep our logging set-up (its handler masks secrets)
            access_log=False,  # one structured line per webhook is logged by the app itself
            loop="auto",  # uvloop when installed
            http="auto",  # httptools when installed
            proxy_headers=True,
            timeout_graceful_shutdown=10,
        )
        server = QuietServer(config)
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
        if not server.started:  # as uvicorn.run: it could not start (e.g. the port is taken)
            raise SystemExit(3)
    except SystemExit as exc:  # uvicorn exits 3 when it cannot start (e.g. the port is taken)
        if exc.code in (0, None):
            return 0
        logging.getLogger("oncall").error("oncall serve could not start (see above)")
        return 1
    return 0


async def _freeze_long_lived(app: FastAPI) -> None:
    """Moves what start-up built (modules, the app and its models, the configuration: lasting
    as long as the process) out of the garbage collector's sight. A full collection, which
    a flood sets off every few thousand webhooks, then scans only what came later: it took
    over 100 ms of the event loop each time, stalling every request meanwhile."""
    gc.collect()
    gc.freeze()
