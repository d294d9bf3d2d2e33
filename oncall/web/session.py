"""Signing in to the status page from a browser, and keeping its buttons to this site.

A browser that gave the admin token on the sign-in form gets a session cookie: 32 random
bytes, `HttpOnly`, `SameSite=Strict`, `Secure` (and the `__Host-` prefix) when
`ONCALL_PUBLIC_URL` is https. The database keeps only a hash of it (table `status_sessions`),
with an HMAC of the admin token keyed by the cookie, so a new `ONCALL_ADMIN_TOKEN` ends every
session, and the session's form token.

A POST of the status page acts only when all three hold: it comes from this site (`Origin`,
else `Referer`, is `ONCALL_PUBLIC_URL`'s origin or the request's own host), it carries the
session cookie, and it carries the session's form token. Another site can make a browser send
a form, but with `SameSite=Strict` not the cookie, and it can never read the form token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from fastapi import Request, Response

from oncall.settings import Settings
from oncall.store import sessions
from oncall.store.database import Database

TTL = timedelta(days=7)  # an owner checks from the same phone for days; sign-out ends it at once


@dataclass(frozen=True, slots=True)
class Session:
    cookie: str
    form_token: str


def _https(settings: Settings) -> bool:
    return settings.public_url.lower().startswith("https://")


def cookie_name(settings: Settings) -> str:
    # `__Host-` cookies must be Secure, path /, no Domain: no other host or path can set them.
    return "__Host-oncall_session" if _https(settings) else "oncall_session"


def _hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def _bound(cookie: str, admin_token: str) -> str:
    return hmac.new(cookie.encode(), admin_token.encode(), hashlib.sha256).hexdigest()


async def start(db: Database, admin_token: str, now: datetime) -> Session:
    """A new session (expired ones are cleared on the way)."""
    session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(24))

    id_hash, bound = _hash(session.cookie), _bound(session.cookie, admin_token)
    await db.transaction(
        lambda conn: sessions.add_session(conn, id_hash, bound, session.form_token, now, now + TTL)
    )
    return session


async def find(request: Request, now: datetime) -> Session | None:
    """The session of the request's cookie, if it is current and for the current admin token."""
    settings: Settings = request.app.state.settings
    cookie = request.cookies.get(cookie_name(settings))
    if not cookie or settings.admin_token is None or len(cookie) > 100:
        return None
    admin_token = settings.admin_token.get_secret_value()

    db: Database = request.app.state.db
    id_hash = _hash(cookie)
    found = await db.transaction(lambda conn: sessions.find_session(conn, id_hash, now))
    if found is None or not hmac.compare_digest(found[0], _bound(cookie, admin_token)):
        return None
    return Session(cookie, found[1])


async def end(db: Database, session: Session) -> None:
    id_hash = _hash(session.cookie)
    await db.transaction(lambda conn: sessions.end_session(conn, id_hash))


def set_cookie(response: Response, settings: Settings, session: Session) -> None:
    response.set_cookie(
        cookie_name(settings),
        session.cookie,
        max_age=int(TTL.total_seconds()),
        path="/",
        secure=_https(settings),
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        cookie_name(settings), path="/", secure=_https(settings), httponly=True, samesite="strict"
    )


def form_token_ok(session: Session, given: str) -> bool:
    return hmac.compare_digest(given.encode(), session.form_token.encode())


def same_site(request: Request) -> bool:
    """The POST comes from a page of this site: its `Origin` (or, without one, its `Referer`)
    is `ONCALL_PUBLIC_URL`'s origin, or has the request's own host (a proxy in front may have
    ended TLS, so the scheme is not compared there). `Origin: null` (a sandboxed frame, a
    `data:` page, a redirect across sites) is not this site."""
    claimed = request.headers.get("origin")
    if claimed is None:
        referer = request.headers.get("referer")
        if not referer:
            return False
        claimed = _origin(referer)
    if not claimed or claimed == "null":
        return False
    claimed = claimed.lower().rstrip("/")
    if claimed == _origin(request.app.state.settings.public_url):
        return True
    host = request.headers.get("host", "").lower()
    return bool(host) and urlsplit(claimed).netloc == host


def _origin(url: str) -> str:
    try:
        parts = urlsplit(url.strip().lower())
    except ValueError:
        return ""
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
