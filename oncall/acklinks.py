"""The ack-link key of this process, and the links signed with it: `{ONCALL_PUBLIC_URL}/ack/{token}`
(tokens: `oncall.acktoken`).

Every instance signs with one shared key, made once and kept in the database, so a link
stays valid across restarts and on any instance. When the database cannot be reached at
start, `load_signer` keeps trying in the background (RETRY_FIRST seconds, doubling up to
RETRY_MAX) and switches to the shared key as soon as it loads. Pages do not wait for that
timer: the service calls `load_key` once before it claims pages to send, right after the
database has answered, so a page is signed with the shared key as soon as the database is
back (pages are read from the database, so none goes out while it is down). Only if the key
itself cannot be read while pages can (a broken table) does a link use a temporary key of
this process; such links keep working until this process stops, also after the shared key
has loaded, and the log says so.

The escalation service signs each page's link (`ack_link`) at its own clock; the web ack page
checks a token with `verify`. `load_signer` / `stop_loading` are the web app's start and stop
hooks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from datetime import datetime
from typing import Any, Protocol

from oncall import logredact
from oncall.acktoken import AckClaim, AckSigner, ForgedToken, new_key
from oncall.clock import Clock, system_clock
from oncall.core.models import Person
from oncall.settings import Settings
from oncall.store.database import Database
from oncall.store.secrets import load_or_create_key

log = logging.getLogger("oncall.ack")

RETRY_FIRST = 1.0
RETRY_MAX = 30.0

_signer: AckSigner | None = None  # the shared key, once loaded (or a test's)
_temporary: AckSigner | None = None  # made only when a link is signed before that
_clock: Clock = system_clock  # for what the key does on its own: its creation, a link given no time


def set_signer(signer: AckSigner | None, now: Clock | None = None) -> None:
    """The key links are signed with (tests: None = not loaded yet), and the clock for what it
    does on its own (stamping the key when it is made, a link asked for without a time)."""
    global _signer, _temporary, _clock
    _signer = signer
    _temporary = None
    _clock = now or system_clock


def signer() -> AckSigner:
    """The shared key, or while it is not loaded this process's temporary one."""
    global _temporary
    if _signer is not None:
        return _signer
    if _temporary is None:
        log.warning("ack links signed with a temporary key: they stop working when oncall restarts")
        key = new_key()
        _temporary = AckSigner(key)
        _mask_in_logs("temporary ack-link key", key)
    return _temporary


def verify(token: str, now: datetime) -> AckClaim:
    """The claim of a link signed with the shared key, or with this process's temporary key
    (a link sent before the shared key loaded)."""
    try:
        return signer().verify(token, now)
    except ForgedToken:
        if _temporary is None or _signer is None:
            raise
        return _temporary.verify(token, now)


def ack_link(settings: Settings, person: Person, ids: tuple[int, ...], now: datetime | None = None) -> str:
    """`{ONCALL_PUBLIC_URL}/ack/{token}`: what the service puts in every page, signed at `now`
    (the service's clock)."""
    return signer().url(settings.public_url, ids, person.id, now or _clock())


def _mask_in_logs(name: str, key: bytes) -> None:
    # As stored in the database, and as a debugger or a dump would write it.
    encoded = base64.b64encode(key).decode()
    urlsafe = base64.urlsafe_b64encode(key).decode()
    logredact.REDACTOR.use_secret(name, encoded, encoded.rstrip("="), urlsafe.rstrip("="), key.hex())


_load_error = ""  # why the last attempt failed, for the log


async def load_key(db: Database, now: datetime | None = None) -> bool:
    """One attempt to load (or make, at `now`) the shared key, unless it is loaded; True once it is."""
    global _signer, _load_error
    if _signer is not None:
        return True
    try:
        at = now or _clock()
        key = await db.transaction(lambda conn: load_or_create_key(conn, at))
    except Exception as exc:  # the database is down or broken: try again later
        _load_error = " ".join(str(exc).split())
        log.debug("ack-link key not loaded: %s", _load_error)
        return False
    if _signer is None:
        _signer = AckSigner(key)
        _mask_in_logs("ack-link key", key)
        if _temporary is not None:
            log.warning(
                "ack-link key loaded from the database; links sent before use a temporary key"
                " and stop working when oncall restarts"
            )
    return True


async def _keep_loading(db: Database, clock: Clock) -> None:
    delay = RETRY_FIRST
    while True:
        await asyncio.sleep(delay)
        if await load_key(db, clock()):
            log.info("ack-link key loaded from the database")
            return
        delay = min(delay * 2, RETRY_MAX)


class _App(Protocol):
    """What the start-up hooks need of the web app: `state.db`, `state.clock`, and a place for
    the background loader (`state.ack_key_loader`)."""

    state: Any


async def load_signer(app: _App) -> None:
    """Loads the shared key at start; if the database is unreachable, keeps trying in the
    background (see the module doc) while the app serves: webhooks answer 503 and /readyz
    says why."""
    db: Database = app.state.db
    clock: Clock = app.state.clock
    if await load_key(db, clock()):
        return
    log.error("ack-link key not loaded (%s); retrying in the background", _load_error)
    app.state.ack_key_loader = asyncio.create_task(_keep_loading(db, clock), name="oncall-ack-key")


async def stop_loading(app: _App) -> None:
    task: asyncio.Task[None] | None = getattr(app.state, "ack_key_loader", None)
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


_stop_loading = stop_loading  # its name in older tests
