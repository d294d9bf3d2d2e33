"""Acknowledging from the phone: the web ack link, and what the four ways of acting share.

    GET  /ack/{token}    shows the incident(s) and Ack / Resolve / Snooze buttons; changes
                         nothing (link previews and mail scanners open links)
    POST /ack/{token}    acts, as the person the link was sent to

Shared with `web.telegram`, `web.slack` and `web.twilio`: who an inbound actor is (only people
in `rotas/people.toml` may act), inbound dedup, the help-text rate limit, the signing key
(made once, kept in the database, shared by every instance) and `ack_link()`, which the
escalation service calls to put a link in every page. `install(app)` mounts the four routers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from oncall.acktoken import AckClaim, AckSigner, ForgedToken, InvalidToken, new_key
from oncall.core.models import Config, Person
from oncall.settings import Settings
from oncall.store.database import Connection, Database

log = logging.getLogger("oncall.ack")

SNOOZE = timedelta(minutes=30)
HELP_PER_HOUR = 3

# ---------------------------------------------------------------------------------------------
# The service, as the inbound side sees it (oncall.service.Service)


class ServiceLike(Protocol):
    async def act(
        self,
        incident_id: int | None,
        actor: Person,
        verb: Any,
        via: str,
        now: datetime,
        snooze_for: timedelta | None = None,
    ) -> Any: ...

    async def incidents(self, open_only: bool = True) -> list[Any]: ...

    async def incident(self, incident_id: int) -> Any: ...

    def who(self, now: datetime) -> list[Any]: ...


def clock(request: Request) -> datetime:
    """Now, from `app.state.clock` when a test set one."""
    fn: Callable[[], datetime] | None = getattr(request.app.state, "clock", None)
    return fn() if fn is not None else datetime.now(UTC)


def service_of(request: Request) -> ServiceLike | None:
    return getattr(request.app.state, "service", None)


def config_of(request: Request) -> Config | None:
    return getattr(request.app.state, "config", None)


def channel_of(request: Request, name: str) -> Any:
    """The channel instance the service pages with (so edits and replies share its limits), or
    a fresh one built from the settings."""
    service = service_of(request)
    channels = getattr(service, "channels", None) or {}
    if name in channels:
        return channels[name]
    cache = request.app.state.__dict__.setdefault("_paging_channels", {})
    if not cache:
        from oncall.channels import build_channels

        cache.update(build_channels(request.app.state.settings))
    return cache[name]


def find_person(
    config: Config | None, *, telegram: int | None = None, slack: str | None = None, phone: str | None = None
) -> Person | None:
    if config is None:
        return None
    if phone is not None:
        phone = normalise_phone(phone)
    for p in config.people.values():
        if telegram is not None and p.telegram == telegram:
            return p
        if slack is not None and p.slack == slack:
            return p
        if phone is not None and p.phone is not None and normalise_phone(p.phone) == phone:
            return p
    return None


def normalise_phone(phone: str) -> str:
    phone = phone.removeprefix("whatsapp:").strip()
    return "+" + "".join(c for c in phone if c.isdigit()) if phone.startswith("+") else phone


def incident_number(text: str) -> int | None:
    """An incident number someone typed or sent: ASCII digits (`"²".isdigit()` is true, yet
    `int("²")` fails) that fit the store's 64-bit integer; else None."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


REFUSAL = "You are not on this shop's rota, so you cannot act on its incidents."

# ---------------------------------------------------------------------------------------------
# The database side: key, dedup, help-text limit


def load_or_create_key(conn: Connection, now: datetime) -> bytes:
    """The ack-link key: made by whichever instance asks first, the same for all afterwards."""
    value = base64.b64encode(new_key()).decode()
    conn.execute(
        "INSERT INTO paging_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
        ("ack_key", value, now),
    )
    row = conn.fetchone("SELECT value FROM paging_secrets WHERE name = ?", ("ack_key",))
    assert row is not None
    return base64.b64decode(str(row[0]))


async def first_time(db: Database, source: str, delivery_id: str, now: datetime) -> bool:
    """True the first time `(source, delivery_id)` is seen; a redelivery is False."""

    def tx(conn: Connection) -> bool:
        cur = conn.execute(
            "INSERT INTO paging_inbound (source, delivery_id, seen_at) VALUES (?, ?, ?)"
            " ON CONFLICT (source, delivery_id) DO NOTHING",
            (source, delivery_id, now),
        )
        return int(cur.rowcount) == 1

    return await db.transaction(tx)


async def help_allowed(db: Database, number: str, now: datetime) -> bool:
    """At most HELP_PER_HOUR help texts (or refusals) an hour to one number, so a confused
    sender — or a loop with an auto-responder — cannot turn into a flood of texts."""

    def tx(conn: Connection) -> bool:
        since = now - timedelta(hours=1)
        row = conn.fetchone(
            "SELECT COUNT(*) FROM paging_help WHERE number = ? AND sent_at > ?", (number, since)
        )
        if row is not None and int(row[0]) >= HELP_PER_HOUR:
            return False
        conn.execute("DELETE FROM paging_help WHERE number = ? AND sent_at <= ?", (number, since))
        conn.execute("INSERT INTO paging_help (number, sent_at) VALUES (?, ?)", (number, now))
        return True

    return await db.transaction(tx)


# ---------------------------------------------------------------------------------------------
# Signing
#
# Every instance signs with one shared key, made once and kept in the database, so a link
# stays valid across restarts and on any instance. When the database cannot be reached at
# start, `load_signer` keeps trying in the background (RETRY_FIRST seconds, doubling up to
# RETRY_MAX) and switches to the shared key as soon as it loads. Pages do not wait for that
# timer: the service calls `load_key` once before it claims pages to send, right after the
# database has answered, so a page is signed with the shared key as soon as the database is
# back (pages are read from the database, so none goes out while it is down). Only if the key
# itself cannot be read while pages can (a broken table) does a link use a temporary key of
# this process; such links keep working until this process stops, also after the shared key
# has loaded, and the log says so.

RETRY_FIRST = 1.0
RETRY_MAX = 30.0

_signer: AckSigner | None = None  # the shared key, once loaded (or a test's)
_temporary: AckSigner | None = None  # made only when a link is signed before that
_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def set_signer(signer: AckSigner | None, now: Callable[[], datetime] | None = None) -> None:
    """The key links are signed with, and (for tests in virtual time) the clock they use."""
    global _signer, _temporary, _now
    _signer = signer
    _temporary = None
    _now = now or (lambda: datetime.now(UTC))


def signer() -> AckSigner:
    """The shared key, or while it is not loaded this process's temporary one."""
    global _temporary
    if _signer is not None:
        return _signer
    if _temporary is None:
        log.warning("ack links signed with a temporary key: they stop working when oncall restarts")
        _temporary = AckSigner(new_key())
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


def ack_link(settings: Settings, person: Person, ids: tuple[int, ...]) -> str:
    """`{ONCALL_PUBLIC_URL}/ack/{token}`: what the service puts in every page."""
    return signer().url(settings.public_url, ids, person.id, _now())


_load_error = ""  # why the last attempt failed, for the log


async def load_key(db: Database) -> bool:
    """One attempt to load (or make) the shared key, unless it is loaded; True once it is."""
    global _signer, _load_error
    if _signer is not None:
        return True
    try:
        key = await db.transaction(lambda conn: load_or_create_key(conn, datetime.now(UTC)))
    except Exception as exc:  # the database is down or broken: try again later
        _load_error = " ".join(str(exc).split())
        log.debug("ack-link key not loaded: %s", _load_error)
        return False
    if _signer is None:
        _signer = AckSigner(key)
        if _temporary is not None:
            log.warning(
                "ack-link key loaded from the database; links sent before use a temporary key"
                " and stop working when oncall restarts"
            )
    return True


async def _keep_loading(db: Database) -> None:
    delay = RETRY_FIRST
    while True:
        await asyncio.sleep(delay)
        if await load_key(db):
            log.info("ack-link key loaded from the database")
            return
        delay = min(delay * 2, RETRY_MAX)


async def load_signer(app: FastAPI) -> None:
    """Loads the shared key at start; if the database is unreachable, keeps trying in the
    background (see the comment above) while the app serves: webhooks answer 503 and /readyz
    says why."""
    db: Database = app.state.db
    if await load_key(db):
        return
    log.error("ack-link key not loaded (%s); retrying in the background", _load_error)
    app.state.ack_key_loader = asyncio.create_task(_keep_loading(db), name="oncall-ack-key")


async def _stop_loading(app: FastAPI) -> None:
    task: asyncio.Task[None] | None = getattr(app.state, "ack_key_loader", None)
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def install(app: FastAPI) -> None:
    """Mounts /ack, /telegram, /slack and /twilio; the key is loaded before the service starts."""
    from oncall.web import slack, telegram, twilio

    app.include_router(router)
    app.include_router(telegram.router)
    app.include_router(slack.router)
    app.include_router(twilio.router)
    app.state.startup_hooks.insert(0, load_signer)
    app.state.shutdown_hooks.append(_stop_loading)


# ---------------------------------------------------------------------------------------------
# The page

router = APIRouter(tags=["paging"])

_STYLE = """
body{font:17px/1.45 system-ui,-apple-system,sans-serif;margin:0;padding:16px;background:#f6f6f4;color:#222}
main{max-width:34rem;margin:auto}
.card{background:#fff;border-radius:12px;padding:16px;margin:0 0 14px;box-shadow:0 1px 3px #0002}
h1{font-size:1.2rem;margin:0 0 12px}h2{font-size:1.05rem;margin:0 0 6px}
.meta{color:#666;font-size:.9rem;margin:0 0 12px}
form{display:flex;gap:8px;flex-wrap:wrap;margin:0}
button{flex:1 1 8rem;font-size:1.05rem;padding:14px 10px;border:0;border-radius:10px;color:#fff}
.ack{background:#1f7a3d}.resolve{background:#444}.snooze{background:#a86400}
.note{padding:12px 14px;border-radius:10px;background:#e8f3ea;margin:0 0 14px}
.bad{background:#fbe9e7}
"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    doc = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        '<meta name=robots content="noindex,nofollow">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(doc, status_code=status, headers=_HEADERS)


# The page's buttons act: no other site may frame it (clickjacking), load anything into it, or
# have the browser guess another type for it. The one style is inline; the forms post to itself.
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
}


def _refused(message: str, status: int = 401) -> HTMLResponse:
    return _page("oncall", f'<p class="note bad">{html.escape(message)}</p>', status)


async def _cards(service: ServiceLike, ids: tuple[int, ...], tz: tzinfo) -> str:
    """The incidents of a link; times in the shop's timezone, as the person reads their pages."""
    out = []
    for iid in ids:
        inc = await service.incident(iid)
        if inc is None:
            out.append(f"<section class=card><h2>Incident {iid}</h2><p class=meta>not found</p></section>")
            continue
        open_ = inc.state in ("held", "triggered", "acknowledged")
        customers = ", ".join(inc.customers[:5]) if getattr(inc, "customers", None) else ""
        since = inc.created_at.astimezone(tz)
        meta = f"{html.escape(inc.state)} · since {since:%a %d %b %H:%M} ({html.escape(str(tz))})"
        if customers:
            meta += f" · {html.escape(customers)}"
        buttons = ""
        if open_:
            buttons = (
                f'<form method=post><input type=hidden name=incident value="{iid}">'
                "<button class=ack name=verb value=ack>Ack</button>"
                "<button class=resolve name=verb value=resolve>Resolve</button>"
                "<button class=snooze name=verb value=snooze>Snooze 30m</button></form>"
            )
        out.append(
            f"<section class=card><h2>#{iid} {html.escape(inc.summary)}</h2>"
            f"<p class=meta>{meta}</p>{buttons}</section>"
        )
    return "".join(out)


def _shop_tz(request: Request) -> tzinfo:
    config = config_of(request)
    return config.rules.shop.timezone if config is not None else UTC


def _claim(request: Request, token: str) -> tuple[Any, Person, ServiceLike] | Response:
    """The token's claim, its person and the running service; else the refusal to answer."""
    try:
        claim = verify(token, clock(request))
    except InvalidToken as exc:
        return _refused(f"{exc}. Use the newest page, or reply to it from Telegram, Slack or SMS.")
    config = config_of(request)
    person = config.people.get(claim.person_id) if config is not None else None
    if person is None:
        return _refused(REFUSAL)  # SPEC §4: every refused token is 401
    service = service_of(request)
    if service is None:
        return _refused("oncall is starting; try again in a moment.", 503)
    return claim, person, service


@router.get("/ack/{token}", response_class=HTMLResponse)
async def show(request: Request, token: str) -> Response:
    got = _claim(request, token)
    if isinstance(got, Response):
        return got
    claim, person, service = got
    cards = await _cards(service, claim.incident_ids, _shop_tz(request))
    return _page(f"Hello {person.name}", cards)


@router.head("/ack/{token}", include_in_schema=False)
async def show_head(request: Request, token: str) -> Response:
    """HEAD, as link previewers and mail scanners send it: GET's status and headers, no body,
    and (like GET) no action."""
    page = await show(request, token)
    return Response(status_code=page.status_code, headers=dict(page.headers))


@router.post("/ack/{token}", response_class=HTMLResponse)
async def act(request: Request, token: str) -> Response:
    got = _claim(request, token)
    if isinstance(got, Response):
        return got
    claim, person, service = got
    form = await request.form()
    verb = str(form.get("verb", ""))
    raw = str(form.get("incident", ""))
    if verb not in ("ack", "resolve", "snooze"):
        return _refused("Choose Ack, Resolve or Snooze.", 400)
    if raw:
        number = incident_number(raw)
        if number is None or number not in claim.incident_ids:
            return _refused("That incident is not in this link.", 400)
        ids = (number,)
    else:
        ids = claim.incident_ids
    notes = []
    for iid in ids:
        result = await service.act(
            iid, person, verb, "web", clock(request), SNOOZE if verb == "snooze" else None
        )
        klass = "note" if result.ok else "note bad"
        notes.append(f'<p class="{klass}">{html.escape(result.text)}</p>')
    cards = await _cards(service, claim.incident_ids, _shop_tz(request))
    return _page(f"Hello {person.name}", "".join(notes) + cards)
