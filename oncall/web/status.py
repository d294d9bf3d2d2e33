"""`GET /`: the owner's status page (SPEC §4) — who is on call now and next for each rota, the
open incidents with their timelines, promises and Ack / Resolve / Customer contacted buttons,
the configuration problems of a failed edit, and the closed-hours report with a chart of the
last 8 weeks (`web.chart`, inline SVG).

Plain HTML, readable on a phone and a desktop: no JavaScript, no external assets, every value
from a payload or a file escaped. Protected by `ONCALL_ADMIN_TOKEN` (SPEC §3). A browser signs
in on the page's form with the token as the password (`POST /login`, a session cookie, see
`web.session`; `POST /logout` ends it); a script sends `Authorization: Bearer TOKEN`, or HTTP
Basic with the token as the password (any user name). Only a signed-in browser gets the
buttons: they `POST /` with the session's form token, and a POST from another site (wrong
`Origin`, no form token) is 403 and changes nothing. Without a token configured the page is
401 and says how to turn it on: it is never open.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from oncall import i18n
from oncall.core import pagetext
from oncall.core.models import Config, Person
from oncall.core.report import closed_period
from oncall.service import IncidentView, OnCallView, who
from oncall.web import session
from oncall.web.api import ApiError, _authorised
from oncall.web.chart import weekly_chart
from oncall.web.inbound import clock, incident_number, lang_of

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
form.act{display:flex;gap:8px;flex-wrap:wrap;margin:10px 0 0}
button{font-size:1rem;padding:10px 14px;border:0;border-radius:8px;color:#fff;background:#444}
form.act button{flex:1 1 7rem}.ack{background:#1f7a3d}.contacted{background:#1d5fa8}
svg.chart{width:100%;height:auto;display:block;margin:4px 0 0}.report{margin:0;padding-left:0;list-style:none}
header{display:flex;justify-content:space-between;align-items:flex-start;gap:8px;flex-wrap:wrap}
.signout{background:none;color:#555;text-decoration:underline;padding:6px 0}
label{display:block;margin:0 0 6px}
input[type=password]{width:100%;box-sizing:border-box;font-size:1rem;padding:10px;margin:0 0 10px;
border:1px solid #bbb;border-radius:8px}
@media (max-width:40rem){.rotas thead{display:none}.rotas tr{display:block;border-bottom:1px solid #e4e4e0;
padding:4px 0}.rotas td{display:block;border:0;padding:1px 4px}
.rotas td[data-k]::before{content:attr(data-k)": ";color:#666;font-size:.85rem}}
"""

_HEADERS = {
    "Cache-Control": "no-store",
    # Not no-referrer: with it browsers send `Origin: null` on the page's own POSTs, and the
    # origin check (web.session.same_site) could not tell them from another site's.
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
}

STATUS_ACTOR = Person(id="status-page", name="the owner (status page)")
VERBS = ("ack", "resolve", "contacted")  # labels: the catalogue's `button.*`


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _document(
    title: str, body: str, *, status: int = 200, refresh: bool = False, lang: str = "en"
) -> HTMLResponse:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    doc = (
        f"<!doctype html><html lang={_e(i18n.base(lang))}><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f'<meta name=robots content="noindex,nofollow">{meta}'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return HTMLResponse(doc, status_code=status, headers=_HEADERS)


def _refused(request: Request, key: str, *, form: bool, status: int = 401, **fields: object) -> HTMLResponse:
    """A refusal (the catalogue's `key`, in the shop's language); with `form`, the sign-in
    form under it."""
    lang = lang_of(getattr(request.app.state, "config", None))
    login = ""
    if form:
        login = (
            "<form method=post action=/login class=card>"
            f"<label for=token>{_e(i18n.text(lang, 'status.token_label'))}</label>"
            "<input id=token name=token type=password autocomplete=current-password required autofocus>"
            f"<button type=submit>{_e(i18n.text(lang, 'status.sign_in_button'))}</button></form>"
        )
    message = i18n.text(lang, key, **fields)
    body = f'<h1>oncall</h1><p class="card bad">{_e(message)}</p>{login}'
    page = _document(i18n.text(lang, "status.sign_in_title"), body, status=status, lang=lang)
    if form:
        # Bearer, not Basic: a Basic challenge makes browsers hide this form behind a prompt.
        page.headers["WWW-Authenticate"] = 'Bearer realm="oncall"'
    return page


# Refusals: keys of the catalogue
SIGN_IN = "status.sign_in"
OFF = "status.off"
CROSS_SITE = "status.cross_site"


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


def _token_in_header(request: Request) -> bool:
    """The request carries the admin token (bearer, or Basic password)."""
    token = request.app.state.settings.admin_token
    if token is None:
        return False
    try:
        _authorised(request)  # the API's bearer check
        return True
    except ApiError:
        pass
    password = _basic_password(request.headers.get("authorization", ""))
    return password is not None and hmac.compare_digest(password, token.get_secret_value().encode())


async def _viewer(request: Request) -> session.Session | HTMLResponse | None:
    """Who may see the page: a signed-in browser (its session), a script with the token in
    a header (None), or nobody (the refusal to answer)."""
    if request.app.state.settings.admin_token is None:
        return _refused(request, OFF, form=False)
    found = await session.find(request, clock(request))
    if found is not None:
        return found
    if _token_in_header(request):
        return None
    return _refused(request, SIGN_IN, form=True)


def _html(lang: str, key: str, markup: dict[str, str], **fields: object) -> str:
    """The catalogue's `key`, escaped, with `markup` fields (already HTML: a `<time>`, a
    `<code>`) put in after escaping."""
    marks = {name: f"\x00{name}\x00" for name in markup}
    out = _e(i18n.text(lang, key, **fields, **marks))
    for name, value in markup.items():
        out = out.replace(marks[name], value)
    return out


def _when(at: datetime | str | None, tz: ZoneInfo, lang: str) -> str:
    if at is None:
        return "—"
    t = datetime.fromisoformat(at) if isinstance(at, str) else at
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return f'<time datetime="{_e(t.isoformat())}">{_e(i18n.day_short(t, lang, tz))}</time>'


def _rotas(rows: list[OnCallView], config: Config, tz: ZoneInfo, lang: str) -> str:
    def t(key: str, **fields: object) -> str:
        return _e(i18n.text(lang, f"status.{key}", **fields))

    if not rows:
        return f'<p class="card">{t("no_rotas")}</p>'
    fallback = config.rules.shop.fallback
    out = [
        f"<div class=card><table class=rotas><thead><tr><th>{t('rota')}</th><th>{t('on_call_now')}</th>"
        f"<th>{t('until')}</th><th>{t('next')}</th><th>{t('from')}</th></tr></thead><tbody>"
    ]
    for r in rows:
        nobody = f"<strong>{t('nobody')}</strong> {t('pages_go', fallback=fallback)}"
        now_cell = _e(r.person) if r.person else nobody
        out.append(
            f"<tr><td><strong>{_e(r.rota)}</strong></td><td data-k='{t('on_call_now')}'>{now_cell}</td>"
            f"<td data-k='{t('until')}'>{_when(r.until, tz, lang)}</td>"
            f"<td data-k='{t('next')}'>{_e(r.next or '—')}</td>"
            f"<td data-k='{t('from')}'>{_when(r.next_at, tz, lang)}</td></tr>"
        )
    out.append("</tbody></table></div>")
    return "".join(out)


def _incident(
    inc: IncidentView, config: Config | None, tz: ZoneInfo, form_token: str | None, lang: str
) -> str:
    """One open incident in the shop's language; its timeline lines as the service wrote them."""
    people = config.people if config is not None else {}

    def t(key: str, **fields: object) -> str:
        return i18n.text(lang, f"status.{key}", **fields)

    def name(pid: str) -> str:
        p = people.get(pid)
        return p.name if p is not None else pid

    summary = pagetext.what_happened(inc.events, tz, inc.updated_at, lang) if inc.events else inc.summary
    parts = [
        f"<section class=card><h3>#{inc.id} {_e(summary)}</h3>",
        f'<p class=meta><span class="state {_e(inc.state)}">{_e(i18n.state(lang, inc.state))}</span>'
        f" · {_e(t('rule', rule=inc.rule))} · {_e(i18n.plural(lang, 'status.events', inc.count))}"
        f" · {_html(lang, 'status.since', {'when': _when(inc.created_at, tz, lang)})}</p>",
    ]
    if inc.customers:
        parts.append(f"<p><strong>{_e(t('customers'))}</strong> {_e(', '.join(inc.customers))}</p>")
    if inc.paged:
        items = "".join(
            "<li>"
            + _html(
                lang,
                "status.paged_item",
                {"when": _when(p["at"], tz, lang)},
                who=name(p["person"]),
                channel=p["channel"],
            )
            + "</li>"
            for p in inc.paged
        )
        parts.append(f"<p><strong>{_e(t('paged'))}</strong></p><ul>{items}</ul>")
    else:
        parts.append(f"<p class=meta>{_e(t('nobody_paged'))}</p>")
    if inc.promises:
        items = "".join(
            "<li>"
            + _html(
                lang,
                "status.promise_item",
                {"when": _when(p["deadline"], tz, lang)},
                customer=p["customer"],
                state=p["state"],
            )
            + "</li>"
            for p in inc.promises
        )
        parts.append(f"<p><strong>{_e(t('promised'))}</strong></p><ul class=promises>{items}</ul>")
    items = "".join(
        f"<li>{_when(e['at'], tz, lang)} {_e(e['what'])} <span class=actor>— {_e(e['actor'])}</span></li>"
        for e in inc.timeline
    )
    parts.append(f"<details open><summary>{_e(t('timeline'))}</summary><ol>{items}</ol></details>")
    if form_token is not None:
        buttons = "".join(
            f"<button type=submit class={verb} name=verb value={verb}>"
            f"{_e(i18n.text(lang, 'button.' + verb))}</button>"
            for verb in VERBS
            if not (verb == "ack" and inc.state == "acknowledged")
            and not (verb == "contacted" and not inc.awaiting_contact)
        )
        parts.append(
            f"<form method=post action=/ class=act><input type=hidden name=form_token value={_e(form_token)}>"
            f"<input type=hidden name=incident value={inc.id}>{buttons}</form>"
        )
    parts.append("</section>")
    return "".join(parts)


def _config_problems(state: Any, lang: str) -> str:
    error: str | None = getattr(state, "config_error", None)
    if not error:
        return ""
    problems = [p for p in error.replace("; ", "\n").splitlines() if p.strip()]
    items = "".join(f"<li>{_e(p)}</li>" for p in problems)
    loaded = getattr(state, "config", None) is not None
    head = i18n.text(lang, "status.not_applied" if loaded else "status.not_loaded")
    check = _html(lang, "status.run_check", {"command": "<code>oncall check</code>"})
    return f"<section class='card bad'><h3>{_e(head)}</h3><ul>{items}</ul><p class=meta>{check}</p></section>"


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def status_page(request: Request) -> HTMLResponse:
    viewer = await _viewer(request)
    if isinstance(viewer, HTMLResponse):
        return viewer
    return await _page(request, viewer)


async def _page(request: Request, viewer: session.Session | None, notes: str = "") -> HTMLResponse:
    state = request.app.state
    config: Config | None = getattr(state, "config", None)
    tz: ZoneInfo = config.rules.shop.timezone if config is not None else ZoneInfo("UTC")
    lang = lang_of(config)  # the owner's page: the shop's language

    def t(key: str, **fields: object) -> str:
        return _e(i18n.text(lang, f"status.{key}", **fields))

    now = clock(request)
    title = i18n.text(lang, "status.title", shop=config.rules.shop.name) if config is not None else "oncall"
    form_token = viewer.form_token if viewer is not None else None
    signout = ""
    if form_token is not None:
        signout = (
            f"<form method=post action=/logout><input type=hidden name=form_token value={_e(form_token)}>"
            f"<button type=submit class=signout>{t('sign_out')}</button></form>"
        )
    as_of = _html(lang, "status.as_of", {"when": _when(now, tz, lang)}, tz=getattr(tz, "key", tz))
    body = [
        f"<header><h1>{_e(title)}</h1>{signout}</header>",
        f"<p class=meta>{as_of}</p>",
        notes,
        _config_problems(state, lang),
    ]
    if config is not None:
        body.append(f"<h2>{t('who')}</h2>" + _rotas(who(config, now), config, tz, lang))
    service = getattr(state, "service", None)
    body.append(f"<h2>{t('open')}</h2>")
    if service is None:
        errors = "; ".join(getattr(state, "startup_errors", [])) or i18n.text(lang, "status.starting")
        body.append(f"<p class='card bad'>{t('not_running', errors=errors)}</p>")
    else:
        incidents: list[IncidentView] = await service.incidents(open_only=True, limit=LIMIT + 1)
        if not incidents:
            body.append(f"<p class='card ok'>{t('no_open')}</p>")
        body.extend(_incident(inc, config, tz, form_token, lang) for inc in incidents[:LIMIT])
        if len(incidents) > LIMIT:
            body.append(f"<p class=meta>{t('only_newest', n=LIMIT)}</p>")
        if config is not None:
            body.append(await _weeks(service, config, now, lang))
    return _document(title, "".join(body), refresh=True, lang=lang)


async def _weeks(service: Any, config: Config, now: datetime, lang: str) -> str:
    """The closed-hours report of the last closed hours, and the chart of the last 8 weeks."""
    tz = config.rules.shop.timezone
    start, end = closed_period(config.rules.business_hours, tz, now)
    last = await service.report(start, end)
    lines = "".join(f"<li>{_e(line)}</li>" for line in last.lines(tz, lang))
    chart = weekly_chart(await service.weekly(now), tz, lang)
    head = _e(i18n.text(lang, "chart.title"))
    return f"<h2>{head}</h2><div class=card><ul class=report>{lines}</ul>{chart}</div>"


async def _form(request: Request) -> dict[str, str]:
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


@router.post("/login", response_class=HTMLResponse, include_in_schema=False)
async def login(request: Request) -> Response:
    settings = request.app.state.settings
    if not session.same_site(request):
        return _refused(request, CROSS_SITE, form=False, status=403)
    if settings.admin_token is None:
        return _refused(request, OFF, form=False)
    given = (await _form(request)).get("token", "").strip()
    if not hmac.compare_digest(given.encode(), settings.admin_token.get_secret_value().encode()):
        return _refused(request, "status.wrong_token", form=True)
    started = await session.start(
        request.app.state.db, settings.admin_token.get_secret_value(), clock(request)
    )
    answer = RedirectResponse("/", status_code=303, headers=_HEADERS)
    session.set_cookie(answer, settings, started)
    return answer


async def _guarded(request: Request) -> tuple[session.Session, dict[str, str]] | HTMLResponse:
    """The session and form of a POST from the signed-in page itself; else the refusal."""
    if not session.same_site(request):
        return _refused(request, CROSS_SITE, form=False, status=403)
    viewer = await _viewer(request)
    if isinstance(viewer, HTMLResponse):
        return viewer
    if viewer is None:  # a header token: scripts act through /api, never through these forms
        return _refused(request, CROSS_SITE, form=False, status=403)
    form = await _form(request)
    if not session.form_token_ok(viewer, form.get("form_token", "")):
        return _refused(request, CROSS_SITE, form=False, status=403)
    return viewer, form


@router.post("/logout", response_class=HTMLResponse, include_in_schema=False)
async def logout(request: Request) -> Response:
    guarded = await _guarded(request)
    if isinstance(guarded, HTMLResponse):
        return guarded
    await session.end(request.app.state.db, guarded[0])
    answer = RedirectResponse("/", status_code=303, headers=_HEADERS)
    session.clear_cookie(answer, request.app.state.settings)
    return answer


@router.post("/", response_class=HTMLResponse, include_in_schema=False)
async def act(request: Request) -> HTMLResponse:
    """An Ack, Resolve or Customer contacted button: acts as "the owner (status page)" and
    shows the page again, with what happened on top."""
    guarded = await _guarded(request)
    if isinstance(guarded, HTMLResponse):
        return guarded
    viewer, form = guarded
    verb = form.get("verb", "")
    incident = incident_number(form.get("incident", ""))
    if verb not in VERBS or incident is None:
        lang = lang_of(getattr(request.app.state, "config", None))
        labels = i18n.text(lang, "status.or").join(i18n.text(lang, f"button.{v}") for v in VERBS)
        return _refused(request, "status.choose", form=False, status=400, verbs=labels)
    service = getattr(request.app.state, "service", None)
    if service is None:
        return _refused(request, "status.try_again", form=False, status=503)
    result = await service.act(incident, STATUS_ACTOR, verb, "status", clock(request))
    note = f"<p class='card {'ok' if result.ok else 'bad'}'>{_e(result.text)}</p>"
    return await _page(request, viewer, note)
