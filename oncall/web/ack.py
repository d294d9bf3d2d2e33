"""The web ack link: what a person opens from a page on their phone.

    GET  /ack/{token}    shows the incident(s) and Ack / Resolve / Snooze buttons (and
                         "Customer contacted" while a customer waits for contact); changes
                         nothing (link previews and mail scanners open links)
    POST /ack/{token}    acts, as the person the link was sent to

Tokens are signed and checked by `oncall.acklinks`; who may act is `oncall.web.inbound`'s.
"""

from __future__ import annotations

import html
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from oncall import i18n
from oncall.acklinks import verify
from oncall.acktoken import InvalidToken
from oncall.core import pagetext
from oncall.core.models import Person
from oncall.web.inbound import (
    SNOOZE,
    ServiceLike,
    clock,
    config_of,
    incident_number,
    lang_of,
    refusal,
    service_of,
)

router = APIRouter(tags=["paging"])

_STYLE = """
body{font:17px/1.45 system-ui,-apple-system,sans-serif;margin:0;padding:16px;background:#f6f6f4;color:#222}
main{max-width:34rem;margin:auto}
.card{background:#fff;border-radius:12px;padding:16px;margin:0 0 14px;box-shadow:0 1px 3px #0002}
h1{font-size:1.2rem;margin:0 0 12px}h2{font-size:1.05rem;margin:0 0 6px}
.meta{color:#666;font-size:.9rem;margin:0 0 12px}
form{display:flex;gap:8px;flex-wrap:wrap;margin:0}
button{flex:1 1 8rem;font-size:1.05rem;padding:14px 10px;border:0;border-radius:10px;color:#fff}
.ack{background:#1f7a3d}.resolve{background:#444}.snooze{background:#a86400}.contacted{background:#1d5fa8}
.note{padding:12px 14px;border-radius:10px;background:#e8f3ea;margin:0 0 14px}
.bad{background:#fbe9e7}
"""


def _page(title: str, body: str, status: int = 200, lang: str = "en") -> HTMLResponse:
    doc = (
        f"<!doctype html><html lang={html.escape(i18n.base(lang))}><head><meta charset=utf-8>"
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


def _refused(message: str, status: int = 401, lang: str = "en") -> HTMLResponse:
    return _page("oncall", f'<p class="note bad">{html.escape(message)}</p>', status, lang)


async def _cards(service: ServiceLike, ids: tuple[int, ...], tz: ZoneInfo, lang: str) -> str:
    """The incidents of a link, in the person's language; times in the shop's timezone, as the
    person reads their pages."""
    out = []

    def t(key: str, **fields: object) -> str:
        return html.escape(i18n.text(lang, key, **fields))

    for iid in ids:
        inc = await service.incident(iid)
        if inc is None:
            out.append(
                f"<section class=card><h2>{t('ack.incident', id=iid)}</h2>"
                f"<p class=meta>{t('ack.not_found')}</p></section>"
            )
            continue
        open_ = inc.state in ("held", "triggered", "acknowledged")
        customers = ", ".join(inc.customers[:5]) if getattr(inc, "customers", None) else ""
        since = i18n.day_short(inc.created_at, lang, tz)
        meta = t("ack.since", state=i18n.state(lang, inc.state), when=since, tz=str(tz))
        if customers:
            meta += f" · {html.escape(customers)}"
        buttons = ""
        if open_:
            contacted = ""
            if getattr(inc, "awaiting_contact", False):
                contacted = (
                    f"<button class=contacted name=verb value=contacted>{t('button.contacted')}</button>"
                )
            buttons = (
                f'<form method=post><input type=hidden name=incident value="{iid}">'
                f"<button class=ack name=verb value=ack>{t('button.ack')}</button>"
                f"<button class=resolve name=verb value=resolve>{t('button.resolve')}</button>"
                f"<button class=snooze name=verb value=snooze>{t('button.snooze')}</button>{contacted}</form>"
            )
        events = getattr(inc, "events", ())
        summary = pagetext.what_happened(events, tz, inc.updated_at, lang) if events else inc.summary
        out.append(
            f"<section class=card><h2>#{iid} {html.escape(summary)}</h2>"
            f"<p class=meta>{meta}</p>{buttons}</section>"
        )
    return "".join(out)


def _shop_tz(request: Request) -> ZoneInfo:
    config = config_of(request)
    return config.rules.shop.timezone if config is not None else ZoneInfo("UTC")


def _claim(request: Request, token: str) -> tuple[Any, Person, ServiceLike] | Response:
    """The token's claim, its person and the running service; else the refusal to answer."""
    try:
        claim = verify(token, clock(request))
    except InvalidToken as exc:
        # Whose link it was is unknown: the shop's language.
        shop_lang = lang_of(config_of(request))
        return _refused(i18n.text(shop_lang, "ack.bad_token", reason=exc), lang=shop_lang)
    config = config_of(request)
    person = config.people.get(claim.person_id) if config is not None else None
    if person is None:
        return _refused(refusal(config), lang=lang_of(config))  # SPEC §4: every refused token is 401
    service = service_of(request)
    if service is None:
        lang = lang_of(config, person)
        return _refused(i18n.text(lang, "ack.starting"), 503, lang)
    return claim, person, service


@router.get("/ack/{token}", response_class=HTMLResponse)
async def show(request: Request, token: str) -> Response:
    got = _claim(request, token)
    if isinstance(got, Response):
        return got
    claim, person, service = got
    lang = lang_of(config_of(request), person)
    cards = await _cards(service, claim.incident_ids, _shop_tz(request), lang)
    return _page(i18n.text(lang, "ack.hello", name=person.name), cards, lang=lang)


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
    lang = lang_of(config_of(request), person)
    form = await request.form()
    verb = str(form.get("verb", ""))
    raw = str(form.get("incident", ""))
    if verb not in ("ack", "resolve", "snooze", "contacted"):
        contacted = i18n.text(lang, "button.contacted")
        return _refused(i18n.text(lang, "ack.choose", contacted=contacted), 400, lang)
    if raw:
        number = incident_number(raw)
        if number is None or number not in claim.incident_ids:
            return _refused(i18n.text(lang, "ack.not_in_link"), 400, lang)
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
    cards = await _cards(service, claim.incident_ids, _shop_tz(request), lang)
    return _page(i18n.text(lang, "ack.hello", name=person.name), "".join(notes) + cards, lang=lang)
