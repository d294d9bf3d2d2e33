"""`GET /`: the owner's status page (SPEC §4) — who is on call now and next for each rota, the
open incidents with their timelines, and the configuration problems of a failed edit.

Plain HTML, readable on a phone and a desktop: no JavaScript, no external assets, every value
from a payload or a file escaped. Protected by `ONCALL_ADMIN_TOKEN` (SPEC §3): `Authorization:
Bearer TOKEN`, or — since a phone browser cannot send a bearer header — HTTP Basic with the
token as the password (any user name); the browser asks for it after a 401 with
`WWW-Authenticate: Basic realm="oncall"`. Without a token configured the page is 401 and says
how to turn it on: it is never open.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
from datetime import UTC, datetime, tzinfo
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from oncall.core.models import Config
from oncall.service import IncidentView, OnCallView, who
from oncall.web.api import ApiError, _authorised
from oncall.web.inbound import clock

LIMIT = 50  # open incidents shown; the rest are in GET /api/incidents?state=open
REFRESH_SECONDS = 60

router = APIRouter(tags=["status"])

_STYLE = """
body{font:16px/1.45 system-ui,-apple-system,sans-serif;margin:0;padding:12px;background:#f6f6f4;color:#222}
main{max-width:60rem;margin:auto}
h1{font-size:1.3rem;margin:4px 0 2px}h2{font-size:1.1rem;margin:18px 0 8px}h3{font-size:1rem;margin:0 0 4px}
.meta{color:#555;font-size:.9rem;margin:0 0 8px}
.card{background:#fff;border-radius:10px;padding:12px 14px;margin:0 0 12px;box-shadow:0 1px 3px #0002;
overflow-wrap:anywhere}
.bad{background:#fbe9e7}.ok{background:#e8f3ea}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e4e4e0;vertical-align:top}
th{font-size:.85rem;color:#555;font-weight:600}
ol,ul{margin:4px 0 0;padding-left:1.3rem}li{margin:2px 0}
.state{display:inline-block;padding:1px 8px;border-radius:9px;background:#eee;font-size:.85rem}
.triggered{background:#f8d7d3}.acknowledged{background:#fdecc8}.held,.deferred{background:#e3e8f3}
time{white-space:nowrap;color:#444}.actor{color:#666}
@media (max-width:40rem){.rotas thead{display:none}.rotas tr{display:block;border-bottom:1px solid #e4e4e0;
padding:4px 0}.rotas td{display:block;border:0;padding:1px 4px}
.rotas td[data-k]::before{content:attr(data-k)": ";color:#666;font-size:.85rem}}
"""

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _document(title: str, body: str, *, status: int = 200, refresh: bool = False) -> HTMLResponse:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    doc = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f'<meta name=robots content="noindex,nofollow">{meta}'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return HTMLResponse(doc, status_code=status, headers=_HEADERS)


def _refused(message: str, *, prompt: bool) -> HTMLResponse:
    page = _document("oncall: sign in", f'<h1>oncall</h1><p class="card bad">{_e(message)}</p>', status=401)
    if prompt:
        page.headers["WWW-Authenticate"] = 'Basic realm="oncall", charset="UTF-8"'
    return page


def _basic_password(header: str) -> bytes | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    _, sep, password = decoded.partition(b":")
    return password if sep else None


def _check(request: Request) -> HTMLResponse | None:
    """None when the request carries the admin token (bearer, or Basic password)."""
    token = request.app.state.settings.admin_token
    if token is None:
        return _refused(
            "The status page is off: set ONCALL_ADMIN_TOKEN (in the environment or .env) and restart"
            " oncall, then open this page again and give the token as the password.",
            prompt=False,
        )
    try:
        _authorised(request)  # the API's bearer check
        return None
    except ApiError:
        pass
    password = _basic_password(request.headers.get("authorization", ""))
    if password is not None and hmac.compare_digest(password, token.get_secret_value().encode()):
        return None
    return _refused(
        "Sign in with the admin token (ONCALL_ADMIN_TOKEN) as the password; any user name will do.",
        prompt=True,
    )


def _when(at: datetime | str | None, tz: tzinfo) -> str:
    if at is None:
        return "—"
    t = datetime.fromisoformat(at) if isinstance(at, str) else at
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    local = t.astimezone(tz)
    return f'<time datetime="{_e(t.isoformat())}">{local:%a %d %b %H:%M}</time>'


def _rotas(rows: list[OnCallView], config: Config, tz: tzinfo) -> str:
    if not rows:
        return '<p class="card">No rotas in rotas/.</p>'
    fallback = config.rules.shop.fallback
    out = [
        "<div class=card><table class=rotas><thead><tr><th>Rota</th><th>On call now</th><th>Until</th>"
        "<th>Next</th><th>From</th></tr></thead><tbody>"
    ]
    for r in rows:
        now_cell = _e(r.person) if r.person else f"<strong>nobody</strong> (pages go to {_e(fallback)})"
        out.append(
            f"<tr><td><strong>{_e(r.rota)}</strong></td><td data-k='On call now'>{now_cell}</td>"
            f"<td data-k=Until>{_when(r.until, tz)}</td><td data-k=Next>{_e(r.next or '—')}</td>"
            f"<td data-k=From>{_when(r.next_at, tz)}</td></tr>"
        )
    out.append("</tbody></table></div>")
    return "".join(out)


def _incident(inc: IncidentView, config: Config | None, tz: tzinfo) -> str:
    people = config.people if config is not None else {}

    def name(pid: str) -> str:
        p = people.get(pid)
        return p.name if p is not None else pid

    parts = [
        f"<section class=card><h3>#{inc.id} {_e(inc.summary)}</h3>",
        f'<p class=meta><span class="state {_e(inc.state)}">{_e(inc.state)}</span> · rule {_e(inc.rule)}'
        f" · {inc.count} event{'s' if inc.count != 1 else ''} · since {_when(inc.created_at, tz)}</p>",
    ]
    if inc.customers:
        parts.append(f"<p><strong>Customers:</strong> {_e(', '.join(inc.customers))}</p>")
    if inc.paged:
        items = "".join(
            f"<li>{_e(name(p['person']))} by {_e(p['channel'])} at {_when(p['at'], tz)}</li>"
            for p in inc.paged
        )
        parts.append(f"<p><strong>Paged:</strong></p><ul>{items}</ul>")
    else:
        parts.append("<p class=meta>Nobody paged yet.</p>")
    items = "".join(
        f"<li>{_when(e['at'], tz)} {_e(e['what'])} <span class=actor>— {_e(e['actor'])}</span></li>"
        for e in inc.timeline
    )
    parts.append(f"<details open><summary>Timeline</summary><ol>{items}</ol></details></section>")
    return "".join(parts)


def _config_problems(state: Any) -> str:
    error: str | None = getattr(state, "config_error", None)
    if not error:
        return ""
    problems = [p for p in error.replace("; ", "\n").splitlines() if p.strip()]
    items = "".join(f"<li>{_e(p)}</li>" for p in problems)
    if getattr(state, "config", None) is not None:
        head = "Your last edit was not applied: the previous version of the files stays in force."
    else:
        head = "No configuration is loaded: nobody can be paged until the files load."
    return (
        f"<section class='card bad'><h3>{_e(head)}</h3><ul>{items}</ul>"
        "<p class=meta>Run <code>oncall check</code> to see every problem.</p></section>"
    )


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def status_page(request: Request) -> HTMLResponse:
    refused = _check(request)
    if refused is not None:
        return refused
    state = request.app.state
    config: Config | None = getattr(state, "config", None)
    tz: tzinfo = config.rules.shop.timezone if config is not None else UTC
    now = clock(request)
    title = f"{config.rules.shop.name}: on call" if config is not None else "oncall"
    body = [
        f"<h1>{_e(title)}</h1>",
        f"<p class=meta>As of {_when(now, tz)} ({_e(getattr(tz, 'key', tz))}); refreshes every minute.</p>",
        _config_problems(state),
    ]
    if config is not None:
        body.append("<h2>Who is on call</h2>" + _rotas(who(config, now), config, tz))
    service = getattr(state, "service", None)
    body.append("<h2>Open incidents</h2>")
    if service is None:
        errors = "; ".join(getattr(state, "startup_errors", [])) or "it is starting"
        body.append(f"<p class='card bad'>The escalation service is not running: {_e(errors)}</p>")
    else:
        incidents: list[IncidentView] = await service.incidents(open_only=True, limit=LIMIT + 1)
        if not incidents:
            body.append("<p class='card ok'>No open incidents.</p>")
        body.extend(_incident(inc, config, tz) for inc in incidents[:LIMIT])
        if len(incidents) > LIMIT:
            body.append(f"<p class=meta>Only the newest {LIMIT}: see /api/incidents?state=open.</p>")
    return _document(title, "".join(body), refresh=True)
