"""The `oncall` command (SPEC §6).

This module only parses arguments; each command lives in `oncall.commands.<module>` as
`run(args: argparse.Namespace) -> int`, imported when called so that `oncall who` does not
pay for importing the web stack. Exit codes: 0 success, 1 invalid input or configuration,
2 usage error (argparse's own).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from oncall import __version__

_WHEN = "ISO 8601 such as 2026-11-28T23:10, in the shop's timezone unless it has an offset"
_SOURCES = "shopify, stripe, woocommerce, zendesk, freshdesk or generic"


MAX_WEEKS = 520  # ten years: further than anyone plans a rota, and far from datetime's limits


def _workers(text: str) -> int:
    """--workers N: 0 to 64 intake worker processes."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of workers") from None
    if not 0 <= n <= 64:
        raise argparse.ArgumentTypeError(f"{n} workers: use 0 (one process) to 64")
    return n


def _weeks(text: str) -> int:
    """--weeks N: a whole number up to MAX_WEEKS (the commands check their own lower bound)."""
    try:
        weeks = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of weeks") from None
    if weeks > MAX_WEEKS:
        raise argparse.ArgumentTypeError(f"{weeks} weeks is too far ahead (at most {MAX_WEEKS})")
    return weeks


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="oncall",
        description="After-hours on-call paging for small online shops.",
        epilog="Files: escalation_rules.toml and rotas/ (ONCALL_RULES_FILE, ONCALL_ROTAS_DIR). "
        "Settings: ONCALL_* variables, from the environment or a .env file. "
        "Exit codes: 0 success, 1 invalid input or configuration, 2 usage error. "
        "`oncall COMMAND --help` describes each command.",
    )
    p.add_argument("--version", action="version", version=f"oncall {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def cmd(name: str, module: str, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.set_defaults(_module=module)
        return sp

    s = cmd("serve", "serve", "run the web server and the escalation scheduler")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    s.add_argument("--no-migrate", action="store_true", help="do not apply pending migrations")
    s.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        help="intake worker processes beside the main one (default ONCALL_WORKERS, else one fewer"
        " than the cores; 0: one process)",
    )

    s = cmd("check", "check", "validate every file; list rota gaps and missing contact details")
    s.add_argument(
        "--weeks", type=_weeks, default=4, metavar="N", help="how far ahead to look for gaps (default 4)"
    )

    s = cmd("who", "who", "who is on call, until when, and who is next")
    s.add_argument("--at", metavar="WHEN", help=f"{_WHEN} (default: now)")
    s.add_argument("--rota", metavar="NAME", help="only this rota (a file rotas/NAME.toml)")

    rota = cmd("rota", "rota", "show a rota's shifts")
    rsub = rota.add_subparsers(dest="rota_command", metavar="SUBCOMMAND", required=True)
    s = rsub.add_parser("show", help="the shifts as a table")
    s.add_argument("name", nargs="?", metavar="NAME", help="rota name (default: all)")
    s.add_argument("--weeks", type=_weeks, default=2, metavar="N", help="how many weeks to show (default 2)")
    s = rsub.add_parser("ics", help="the rota as iCalendar on stdout")
    s.add_argument("name", metavar="NAME", help="rota name (a file rotas/NAME.toml)")
    s.add_argument(
        "--weeks", type=_weeks, default=26, metavar="N", help="how many weeks to export (default 26)"
    )

    s = cmd("simulate", "simulate", "dry run (sends nothing): matching rule, pages, customer message")
    s.add_argument(
        "event", metavar="EVENT.json", help="an event in the generic schema, or a payload of --source"
    )
    s.add_argument("--source", help=f"the file is a payload of this platform: {_SOURCES} (default: generic)")
    s.add_argument("--at", metavar="WHEN", help=f"when the event arrives: {_WHEN} (default: now)")

    s = cmd("incidents", "incidents", "list open incidents")
    s.add_argument("--all", action="store_true", help="include resolved and cancelled ones")
    s = cmd("ack", "incidents", "acknowledge an incident")
    s.add_argument("id", type=int, metavar="ID", help="the incident's number (see oncall incidents)")
    s = cmd("resolve", "incidents", "resolve an incident")
    s.add_argument("id", type=int, metavar="ID", help="the incident's number (see oncall incidents)")
    s = cmd("contacted", "incidents", "mark an incident's customers contacted (their promise kept)")
    s.add_argument("id", type=int, metavar="ID", help="the incident's number (see oncall incidents)")

    s = cmd("report", "report", "the closed-hours report: incidents, pages, time to acknowledge, promises")
    s.add_argument(
        "--since", metavar="WHEN", help=f"{_WHEN} (default: the last closed hours, as the opening digest)"
    )
    s.add_argument("--json", action="store_true", help="print JSON instead of text")

    s = cmd("test-page", "test_page", "send a real test message to a person")
    s.add_argument("person", metavar="PERSON", help="a person's ID: [person.ID] in rotas/people.toml")
    s.add_argument("--via", metavar="CHANNEL", help="telegram, slack or sms (default: all they have)")

    s = cmd("trigger", "trigger", "post a correctly signed sample webhook to a running server")
    s.add_argument("source", metavar="SOURCE", help=_SOURCES)
    s.add_argument("kind", metavar="KIND", help="the kind of event, e.g. payment_failed or ticket_created")
    s.add_argument("--url", help="server base URL (default: ONCALL_PUBLIC_URL)")

    tg = cmd("telegram", "telegram", "Telegram bot set-up")
    tsub = tg.add_subparsers(dest="telegram_command", metavar="SUBCOMMAND", required=True)
    tsub.add_parser("setup", help="register the webhook URL and secret with Telegram")

    cmd("migrate", "migrate", "create or upgrade the database schema")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        module = importlib.import_module(f"oncall.commands.{args._module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"oncall.commands.{args._module}":
            raise
        print(f"error: 'oncall {args.command}' is not available in this version", file=sys.stderr)
        return 1
    try:
        _logging(args)
        code: int = module.run(args)
    except BrokenPipeError:  # `oncall rota ics NAME | head`: the reader went away
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except ValidationError as exc:  # a setting of SPEC §3 (environment or .env) has a bad value
        if exc.title != "Settings":
            raise
        for err in exc.errors():
            name = "ONCALL_" + "_".join(str(part) for part in err["loc"]).upper()
            # the value itself is not repeated: it may be a secret
            print(f"error: {name}: {err['msg']} (environment or .env)", file=sys.stderr)
        return 1
    except Exception as exc:
        # The store is imported only by the commands that use it (psycopg is slow to import).
        store = sys.modules.get("oncall.store.connection")
        if store is None or not isinstance(exc, store.StoreError):
            raise
        # e.g. an ONCALL_DATABASE_URL of an unsupported kind
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 1
    return code


def _logging(args: argparse.Namespace) -> None:
    """Every command's log lines (its libraries' too) go to stderr with every secret masked:
    at INFO for `oncall serve`, else WARNING (ONCALL_LOG_LEVEL changes both)."""
    from oncall import logredact
    from oncall.settings import Settings

    logredact.configure(Settings(), "INFO" if args._module == "serve" else "WARNING")


def one_line(text: str) -> str:
    """A driver's multi-line message on one line, so that each error is one line of stderr."""
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
