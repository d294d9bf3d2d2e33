"""`POST /twilio/sms` (replies to SMS / WhatsApp pages) and `POST /twilio/status` (delivery
reports).

Twilio signs each request with `X-Twilio-Signature` over the URL it called — which it knows as
`{ONCALL_PUBLIC_URL}/twilio/…`, not as whatever host a proxy hands us — and the form fields;
the SDK's `RequestValidator` checks it, and a bad one is 401. Twilio retries a webhook it got
no answer to, so each `MessageSid` is handled once.

Replies: `1a` / `1r` / `1s` act on incident 1, `a 1` and `ACK 1` too, and `ack` alone on the
newest incident paged to that number; `1c` marks its customers contacted (their promise
kept). The answer is TwiML confirming what happened; a reply that is not understood gets a
short help text, at most a few an hour per number. A number that is not in
`rotas/people.toml` is refused (as rarely) and changes nothing. `STOP`/`START` are Twilio's
to handle.
"""

from __future__ import annotations

import logging
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from oncall.channels.base import sms_ref
from oncall.channels.sms import fit, parse_reply
from oncall.core.promisetext import sms_contacted_code
from oncall.web.inbound import (
    SNOOZE,
    channel_of,
    clock,
    config_of,
    find_person,
    first_time,
    help_allowed,
    lang_of,
    normalise_phone,
    refusal,
    say,
    service_of,
)

log = logging.getLogger("oncall.twilio")

router = APIRouter(tags=["paging"])

STOP_WORDS = {"stop", "start", "unstop", "stopall", "unsubscribe", "cancel", "end", "quit", "help", "info"}
FAILED = ("undelivered", "failed")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def twiml(text: str | None) -> Response:
    reply = MessagingResponse()
    if text:
        reply.message(fit(text, max_segments=1))
    return Response(str(reply), media_type="application/xml")


async def verified(request: Request, path: str) -> dict[str, str] | JSONResponse:
    settings = request.app.state.settings
    body = await request.body()
    if len(body) > settings.max_body_bytes:
        return _error(413, "body over the size limit")
    token = settings.twilio_auth_token
    if token is None:
        return _error(401, "ONCALL_TWILIO_AUTH_TOKEN is not set")
    form = {k: str(v) for k, v in (await request.form()).items()}
    url = f"{settings.public_url}{path}"
    if request.url.query:
        url += f"?{request.url.query}"
    signature = request.headers.get("x-twilio-signature", "")
    if not signature or not RequestValidator(token.get_secret_value()).validate(url, form, signature):
        return _error(401, "missing or wrong X-Twilio-Signature")
    return form


@router.post("/twilio/sms")
async def sms(request: Request) -> Response:
    got = await verified(request, "/twilio/sms")
    if isinstance(got, JSONResponse):
        return got
    form = got
    sid, sender, body = form.get("MessageSid", ""), form.get("From", ""), form.get("Body", "")
    if not sid or not sender:
        return _error(400, "MessageSid and From are required")
    service = service_of(request)
    if service is None:  # before the dedup record, so that Twilio's retry is not lost
        return _error(503, "the escalation service is not running")
    db = request.app.state.db
    now = clock(request)
    if not await first_time(db, "twilio", sid, now):
        return twiml(None)
    number = normalise_phone(sender)
    if body.strip().lower() in STOP_WORDS:
        return twiml(None)
    config = config_of(request)
    actor = find_person(config, phone=number)
    if actor is None:
        return twiml(refusal(config) if await help_allowed(db, number, now) else None)
    parsed = parse_reply(body)
    if parsed is None:
        # The help text in the sender's language (worded to fit one GSM-7 segment).
        return twiml(say(config, actor, "sms.help") if await help_allowed(db, number, now) else None)
    verb, incident_id = parsed
    result = await service.act(incident_id, actor, verb, "sms", now, SNOOZE if verb == "snooze" else None)
    text = str(result.text)
    if getattr(result, "awaiting_contact", False) and result.incident_id is not None:
        # as the confirmation says it
        text = f"{text} {sms_contacted_code(result.incident_id, lang_of(config, actor))}"
    if result.ok:
        # This reply is the sender's confirmation; the service's follow-up SMS would repeat it.
        sms_channel = channel_of(request, "sms")
        mark = getattr(sms_channel, "mark_confirmed", None)
        if mark is not None:
            mark(sender, text)
    return twiml(text)


@router.post("/twilio/status")
async def status(request: Request) -> Response:
    got = await verified(request, "/twilio/status")
    if isinstance(got, JSONResponse):
        return got
    form = got
    state = form.get("MessageStatus", "")
    sid, to = form.get("MessageSid", ""), form.get("To", "")
    if state not in FAILED or not sid:
        return Response(status_code=204)
    reason = f"was {state}" + (f" (Twilio error {form['ErrorCode']})" if form.get("ErrorCode") else "")
    log.warning("SMS %s to %s %s", sid, to, reason)
    await failed(request, sms_ref(sid, to), reason, clock(request))
    return Response(status_code=204)


async def failed(request: Request, ref: str, reason: str, now: datetime) -> None:
    """A page that never reached the phone: recorded as failed, and the person is paged by
    their other channels (the service's fail-over), unless the incident was acted on since."""
    service = service_of(request)
    if service is None:
        return
    try:
        await service.page_undelivered(ref, reason, now)
    except Exception:  # never fail Twilio's callback: it would only retry the same report
        log.exception("recording the failed SMS %s", ref)
