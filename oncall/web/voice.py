"""`POST /twilio/voice` (what a page call says, and the key pressed) and
`POST /twilio/voice/status` (how the call ended), SPEC §4 and §5 Voice.

Both are signed by Twilio (`X-Twilio-Signature` over `{ONCALL_PUBLIC_URL}/twilio/voice…`,
its query string included, and the form; `oncall.web.twilio.verified`): a bad signature is
401. The call's address carries the page's signed ack-link token (`?t=`), so the call speaks
of, and its keys act on, the incidents that page was for and act as the person it was for —
never as whoever a form field names. The token's key is in the store: a key pressed after a
restart still acts.

    first request    AnsweredBy human/unknown: the page, then <Gather numDigits=1> (1 ack,
                     2 resolve, 3 snooze 30m, 9 repeat), said twice, then goodbye;
                     AnsweredBy machine_*/fax: hang up, the page has not reached the person
    Digits=N         the same address: what the key did ("Reconocido. Gracias."), hang up
    status           no-answer, busy, failed, canceled (or completed by a machine): the page
                     failed, the timeline says why, fail-over and `ack_within` apply
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from twilio.twiml.voice_response import VoiceResponse

from oncall import i18n
from oncall.acklinks import verify
from oncall.acktoken import InvalidToken
from oncall.channels.base import sms_ref
from oncall.channels.voice import STATUS_PATH, VOICE_PATH
from oncall.core import voicetext
from oncall.core.incident import Incident
from oncall.core.models import Config, Person, person_language
from oncall.store import incidents as store
from oncall.store.connection import Connection
from oncall.web.inbound import SNOOZE, ServiceLike, clock, config_of, find_person, normalise_phone, service_of
from oncall.web.twilio import verified

log = logging.getLogger("oncall.twilio")

router = APIRouter(tags=["paging"])

GATHER_SECONDS = 6  # after the text ends: time to find the key on a phone just woken
# How a call that did not reach its person ended, as the timeline says it.
NOT_REACHED = {
    "no-answer": "was not answered",
    "busy": "was busy",
    "failed": "failed",
    "canceled": "was canceled",
}


def machine(answered_by: str) -> str | None:
    """Why a call answered by `AnsweredBy` did not reach a person, or None (a human, unknown)."""
    if answered_by.startswith("machine"):
        return "reached a voicemail"
    if answered_by == "fax":
        return "reached a fax machine"
    return None


def _xml(reply: VoiceResponse) -> Response:
    return Response(str(reply), media_type="application/xml")


def _said(text: str, lang: str | None) -> Response:
    reply = VoiceResponse()
    reply.say(text, language=i18n.voice(lang))
    reply.hangup()
    return _xml(reply)


def page_twiml(speech: str, lang: str | None, action: str, before: str = "") -> VoiceResponse:
    """The page and its keys, said twice; then goodbye. A key goes to `action` (this address)."""
    reply = VoiceResponse()
    if before:
        reply.say(before, language=i18n.voice(lang))
    for _ in range(2):
        gather = reply.gather(num_digits=1, action=action, method="POST", timeout=GATHER_SECONDS)
        gather.say(speech, language=i18n.voice(lang))
    reply.say(voicetext.goodbye(lang), language=i18n.voice(lang))
    reply.hangup()
    return reply


async def _incidents(request: Request, ids: Sequence[int]) -> list[Incident]:
    """The incidents of the call still paging, read now: the call says how things stand."""

    def tx(conn: Connection) -> list[Incident]:
        found = [store.get_incident(conn, i) for i in ids]
        return [i for i in found if i is not None and i.state == "triggered"]

    result: list[Incident] = await request.app.state.db.transaction(tx)
    return result


def _language(person: Person | None, config: Config | None) -> str:
    """The person's language, else the shop's (SPEC §5)."""
    return person_language(person, config.rules.shop if config is not None else None)


@router.post(VOICE_PATH)
async def call(request: Request) -> Response:
    got = await verified(request, VOICE_PATH)
    if isinstance(got, JSONResponse):
        return got
    form = got
    config = config_of(request)
    now = clock(request)
    try:
        claim = verify(request.query_params.get("t", ""), now)
    except InvalidToken:
        return _said(voicetext.expired(_language(None, config)), _language(None, config))
    person = config.people.get(claim.person_id) if config is not None else None
    if person is None or person.phone is None:
        return _said(voicetext.expired(_language(None, config)), _language(None, config))
    if normalise_phone(form.get("To", "")) != normalise_phone(person.phone):
        # Signed by Twilio, yet not the call placed to this link's person: nobody acts on it.
        return JSONResponse({"error": "this call was not placed to the person of its page"}, status_code=401)
    service = service_of(request)
    if service is None or config is None:
        return JSONResponse({"error": "the escalation service is not running"}, status_code=503)
    lang = _language(person, config)
    ref = sms_ref(form.get("CallSid", ""), person.phone)
    digits = form.get("Digits", "")
    if not digits:
        why = machine(form.get("AnsweredBy", ""))
        if why is not None:
            await _not_reached(service, ref, why, now)
            reply = VoiceResponse()
            reply.hangup()
            return _xml(reply)
    action = f"{request.app.state.settings.public_url}{VOICE_PATH}?{request.url.query}"
    verb = voicetext.KEYS.get(digits)
    if verb is None:
        incidents = await _incidents(request, claim.incident_ids)
        if not incidents:
            return _said(voicetext.unchanged(lang), lang)
        speech = voicetext.speech(incidents, config.rules.shop, lang, now)
        wrong = voicetext.unknown_key(lang) if digits and digits != voicetext.REPEAT else ""
        return _xml(page_twiml(speech, lang, action, before=wrong))
    acted = await _act(service, claim.incident_ids, person, verb, now)
    return _said(voicetext.done(verb, acted, lang) if acted else voicetext.unchanged(lang), lang)


async def _act(
    service: ServiceLike, ids: Sequence[int], person: Person, verb: voicetext.Verb, now: datetime
) -> int:
    """The key acts on every incident of the call (a bundle's 1 acknowledges all, as an SMS
    bundle's link does); how many it changed."""
    acted = 0
    for iid in ids:
        result = await service.act(iid, person, verb, "voice", now, SNOOZE if verb == "snooze" else None)
        acted += 1 if result.ok else 0
    return acted


@router.post(STATUS_PATH)
async def status(request: Request) -> Response:
    got = await verified(request, STATUS_PATH)
    if isinstance(got, JSONResponse):
        return got
    form = got
    state, sid, to = form.get("CallStatus", ""), form.get("CallSid", ""), form.get("To", "")
    why = NOT_REACHED.get(state)
    if why is None and state == "completed":
        why = machine(form.get("AnsweredBy", ""))
    if why is None or not sid:
        return Response(status_code=204)
    service = service_of(request)
    if service is None:
        return JSONResponse({"error": "the escalation service is not running"}, status_code=503)
    person = find_person(config_of(request), phone=to)
    # The pages of this call are named by its sid and the number as people.toml writes it.
    ref = sms_ref(sid, person.phone if person is not None and person.phone else to)
    log.warning("page call %s %s", sid, why)
    await _not_reached(service, ref, why, clock(request))
    return Response(status_code=204)


async def _not_reached(service: ServiceLike, ref: str, why: str, now: datetime) -> None:
    try:
        await service.page_undelivered(ref, why, now, channel="voice", noted=True)
    except Exception:  # never fail Twilio's callback: it would only retry the same report
        log.exception("recording the call %s that did not reach its person", ref)
