"""`POST /telegram/webhook`: button presses and commands from the Telegram bot.

Telegram proves itself with `X-Telegram-Bot-Api-Secret-Token` (the secret `oncall telegram
setup` registered), compared in constant time; a missing or wrong one is 401. It redelivers an
update until it gets a 2xx, so `update_id`s already handled are answered 200 and skipped.

Buttons: callback data `ack:N`, `resolve:N`, `snooze:N`, on a bundle `ack:all` (… `:all`):
every incident the pressed message paged the presser for (see `channels.telegram`), and
`contacted:N` after an ack while a customer waits for contact. Commands: `/oncall` (who now,
until when, who next), `/incidents`, `/ack N`, `/resolve N`, `/snooze N`, `/contacted N`.
People not in `rotas/people.toml` are refused and nothing changes.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from oncall import i18n
from oncall.channels.base import Verb
from oncall.channels.telegram import parse_callback
from oncall.core import pagetext
from oncall.core.models import Config, Person
from oncall.web import jsonbody
from oncall.web.inbound import (
    SNOOZE,
    ServiceLike,
    channel_of,
    clock,
    config_of,
    find_person,
    first_time,
    incident_number,
    lang_of,
    refusal,
    say,
    service_of,
)

log = logging.getLogger("oncall.telegram")

router = APIRouter(tags=["paging"])


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@router.post("/telegram/webhook")
async def webhook(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    body = await request.body()
    if len(body) > settings.max_body_bytes:
        return _error(413, "body over the size limit")
    secret = settings.telegram_webhook_secret
    given = request.headers.get("x-telegram-bot-api-secret-token", "")
    if secret is None or not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
        return _error(401, "missing or wrong X-Telegram-Bot-Api-Secret-Token")
    try:
        update = jsonbody.loads(body)
    except jsonbody.UnreadableJson as exc:
        return _error(400, f"not a Telegram update: the body is {exc}")
    update_id = update.get("update_id") if isinstance(update, dict) else None
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return _error(400, "not a Telegram update: no integer update_id")
    service = service_of(request)
    if service is None:  # before the dedup record, so that Telegram's retry is not lost
        return _error(503, "the escalation service is not running")
    now = clock(request)
    if not await first_time(request.app.state.db, "telegram", str(update_id), now):
        return JSONResponse({"ok": True, "duplicate": True})
    if isinstance(update.get("callback_query"), dict):
        await _button(request, service, update["callback_query"], now)
    elif isinstance(update.get("message"), dict):
        await _command(request, service, update["message"], now)
    return JSONResponse({"ok": True})


async def _button(request: Request, service: ServiceLike, query: dict[str, Any], now: datetime) -> None:
    channel = channel_of(request, "telegram")
    user = _field(query, "from", "id")
    config = config_of(request)
    actor = find_person(config, telegram=int(user)) if isinstance(user, int) else None
    if actor is None:
        await _reply(channel.answer_callback(str(query.get("id")), refusal(config)))
        return
    data = query.get("data")
    cb = parse_callback(data if isinstance(data, str) else None)
    if cb is None:
        await _reply(
            channel.answer_callback(str(query.get("id")), say(config, actor, "reply.button_unknown"))
        )
        return
    snooze = SNOOZE if cb.verb == "snooze" else None
    if cb.incident_id is None:
        text = await _act_on_message(service, query, actor, cb.verb, now, lang_of(config, actor))
    else:
        result = await service.act(cb.incident_id, actor, cb.verb, "telegram", now, snooze)
        text = result.text
    # The service edits every message of the incident (this one included) to name who acted.
    await _reply(channel.answer_callback(str(query.get("id")), text))


async def _act_on_message(
    service: ServiceLike, query: dict[str, Any], actor: Person, verb: Verb, now: datetime, lang: str
) -> str:
    """A bundle's "… all" button: the verb on every incident that message paged `actor` for."""
    message = query.get("message")
    chat = _field(query, "message", "chat")
    mid = message.get("message_id") if isinstance(message, dict) else None
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    if not isinstance(mid, int) or not isinstance(chat_id, int):
        return i18n.text(lang, "reply.too_old")
    ids = await service.incidents_in_message("telegram", f"{chat_id}:{mid}", actor.id)
    if not ids:
        return i18n.text(lang, "reply.nothing_open")
    snooze = SNOOZE if verb == "snooze" else None
    results = [await service.act(i, actor, verb, "telegram", now, snooze) for i in ids]
    return all_done(verb, [r.incident_id for r in results if r.ok], len(ids), lang)


async def _command(request: Request, service: ServiceLike, message: dict[str, Any], now: datetime) -> None:
    text = str(message.get("text") or "").strip()
    chat = _field(message, "chat", "id")
    user = _field(message, "from", "id")
    if not text.startswith("/") or not isinstance(chat, int):
        return
    channel = channel_of(request, "telegram")
    config = config_of(request)
    actor = find_person(config, telegram=int(user)) if isinstance(user, int) else None
    if actor is None:
        await _reply(channel.send_text(chat, refusal(config)))
        return
    reply = await answer(service, config, actor, text, now)
    await _reply(channel.send_text(chat, reply))


def all_done(verb: Verb, done: list[int], asked: int, lang: str | None = None) -> str:
    """The answer to a bundle's "… all" button."""
    past = i18n.text(lang, f"act.past_{verb}")
    ids = ", ".join(f"#{i}" for i in done)
    if len(done) == asked:
        return i18n.text(lang, "act.all_done", count=asked, past=past, ids=ids)
    return i18n.text(lang, "act.some_done", done=len(done), count=asked, past=past, ids=ids)


def _field(obj: dict[str, Any], outer: str, inner: str) -> Any:
    """`obj[outer][inner]`, or None when the update has another shape (it is signed, but
    Telegram's shapes change and a bug must not become a 500 that Telegram retries)."""
    value = obj.get(outer)
    return value.get(inner) if isinstance(value, dict) else None


async def _reply(sending: Awaitable[Any]) -> None:
    """Sends a reply; one that fails (bot token unset, Telegram down) is logged, not a 500: the
    update is already handled and recorded, so Telegram's retry would change nothing."""
    try:
        await sending
    except Exception as exc:
        log.warning("Telegram reply not sent: %s", exc)


async def answer(
    service: ServiceLike,
    config: Config | None,
    actor: Person,
    text: str,
    now: datetime,
    via: str = "telegram",
) -> str:
    """The reply to one command (also used by the Slack slash command for `/oncall`)."""
    words = text.split()
    command = words[0].lower().split("@", 1)[0].lstrip("/")
    arg = words[1].lstrip("#") if len(words) > 1 else ""
    lang = lang_of(config, actor)
    if command == "oncall":
        return who_text(service, config, now, lang)
    if command == "incidents":
        tz = config.rules.shop.timezone if config is not None else ZoneInfo("UTC")
        return await incidents_text(service, lang, tz)
    if command in ("ack", "resolve", "snooze", "contacted"):
        iid = incident_number(arg) if arg else None
        if arg and iid is None:
            return i18n.text(lang, "reply.usage", command=command)
        result = await service.act(iid, actor, command, via, now, SNOOZE if command == "snooze" else None)
        return str(result.text)
    return i18n.text(lang, "reply.help")


def who_text(service: ServiceLike, config: Config | None, now: datetime, lang: str | None = None) -> str:
    """Who is on call now for each rota, until when, and who is next, in `lang`."""
    tz = config.rules.shop.timezone if config is not None else ZoneInfo("UTC")
    t = i18n.text
    lines = []
    for r in service.who(now):
        if r.person is None:
            line = t(lang, "who.nobody", rota=r.rota)
        else:
            line = t(lang, "who.person", rota=r.rota, person=r.person)
            if r.until is not None:
                line = t(lang, "who.until", line=line, when=i18n.when(r.until, lang, tz, now))
        if r.next is not None:
            line = t(lang, "who.next", line=line, person=r.next)
            if getattr(r, "next_at", None) is not None and r.next_at != r.until:
                line = t(lang, "who.next_from", line=line, when=i18n.when(r.next_at, lang, tz, now))
        lines.append(line)
    return "\n".join(lines) or t(lang, "who.no_rotas")


async def incidents_text(service: ServiceLike, lang: str | None = None, tz: ZoneInfo | None = None) -> str:
    items = await service.incidents(True)
    if not items:
        return i18n.text(lang, "reply.no_incidents")

    def summary(i: Any) -> str:  # in the reader's language where the view carries its events
        events = getattr(i, "events", ())
        return pagetext.what_happened(events, tz, i.updated_at, lang) if events and tz else str(i.summary)

    lines = [f"#{i.id} [{i18n.state(lang, i.state)}] {summary(i)}" for i in items[:20]]
    if len(items) > 20:
        lines.append(i18n.text(lang, "reply.more_incidents", n=len(items) - 20))
    return "\n".join(lines)
