"""`oncall incidents [--all]`, `oncall ack ID`, `oncall resolve ID`, `oncall contacted ID`:
incidents from the terminal.

They work on the same store as `oncall serve` (ONCALL_DATABASE_URL). An ack or resolve from
here stops the escalation just like one from a phone: the running server finds no step left to
fire, and the pages already sent are updated through the configured channels.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC

from oncall.clock import system_clock
from oncall.core.models import Config, Person
from oncall.service import IncidentView, Service, Verb
from oncall.settings import Settings
from oncall.store import StoreError, open_database
from oncall.store import incidents as store

TERMINAL = Person(id="terminal", name="the owner (terminal)", language="en")


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    config = _config(settings)
    try:
        pending = _pending_migrations(settings)
        if pending:
            print(
                f"error: the database is not set up ({len(pending)} migration(s) pending): "
                "run `oncall migrate` first",
                file=sys.stderr,
            )
            return 1
        return asyncio.run(_run(args, settings, config))
    except StoreError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1


def _pending_migrations(settings: Settings) -> list[str]:
    db = open_database(settings.database_url)
    try:
        return db.pending_migrations()
    finally:
        db.close()


def _config(settings: Settings) -> Config | None:
    from oncall.config import ConfigError, load_config

    try:
        return load_config(settings.rules_file, settings.rotas_dir)
    except ConfigError as exc:  # listing works without a valid configuration; acting does not
        for problem in exc.problems:
            print(f"warning: configuration not loaded: {problem}", file=sys.stderr)
        return None
    except Exception as exc:
        print(f"warning: configuration not loaded: {' '.join(str(exc).split())}", file=sys.stderr)
        return None


async def _run(args: argparse.Namespace, settings: Settings, config: Config | None) -> int:
    from oncall.channels import build_channels

    db = open_database(settings.database_url)
    service = Service(
        db, lambda: config, build_channels(settings), settings, bundle_window=0.0, clock=system_clock
    )
    try:
        if args.command == "incidents":
            items = await service.incidents(open_only=not args.all, limit=500)
            print(table(items, config))
            if args.all:
                routes = await db.transaction(store.maintenance_routes)
                for r in routes:
                    what = r.summary or r.rule
                    print(f"event {r.event_id} during maintenance ({r.note}): {what}, nobody paged")
            return 0
        verbs: dict[str, Verb] = {"ack": "ack", "resolve": "resolve", "contacted": "contacted"}
        verb = verbs[args.command]
        result = await service.act(args.id, TERMINAL, verb, "terminal", system_clock())
        await service.drain(30.0)
        if result.ok:
            print(result.text)
            return 0
        text = result.text  # "There is no incident 99" -> "error: there is no incident 99"
        if text[:2].istitle():
            text = text[0].lower() + text[1:]
        print(f"error: {text}", file=sys.stderr)
        return 1
    finally:
        await service.aclose(5.0)
        await db.aclose()


def table(items: list[IncidentView], config: Config | None) -> str:
    if not items:
        return "no incidents"
    tz = config.rules.shop.timezone if config is not None else UTC
    rows = [("ID", "STATE", "OPENED", "RULE", "WHAT")]
    for i in items:
        opened = i.created_at.astimezone(tz).strftime("%a %d %b %H:%M")
        rows.append((str(i.id), i.state, opened, i.rule, i.summary))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    return "\n".join("  ".join(r[c].ljust(widths[c]) for c in range(4)) + "  " + r[4] for r in rows).rstrip()
