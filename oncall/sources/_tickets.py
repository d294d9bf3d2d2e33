"""The ticket body owners paste into a Zendesk trigger or a Freshdesk automation (SPEC §4):

    {"ticket": {"id", "subject", "priority", "status", "updated_at",
                "requester": {"name", "email", "phone", "language" | "locale"}},
     "event": "ticket_created" | "ticket_updated"}

and Freshdesk's classic `{"freshdesk_webhook": {"ticket_id", "ticket_subject", …}}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from oncall.core.models import Customer, Event, Ticket
from oncall.sources._common import PayloadError, first, language_code, lower, summary, text, timestamp

# Without an explicit "event", a ticket in one of these states is an update, not a new ticket.
UPDATED_STATUSES = frozenset({"solved", "closed", "resolved", "pending", "on-hold", "on hold", "hold"})


def _blank(value: Any) -> Any:
    # An unfilled placeholder ("{{ticket.requester.phone}}") or an empty one means "absent".
    t = text(value)
    return None if t is None or (t.startswith("{{") and t.endswith("}}")) else t


def ticket_event(
    source: str, label: str, payload: Any, received_at: datetime, dedup_key: str | None, body_hash: str
) -> Event:
    if not isinstance(payload, dict):
        raise PayloadError(f"a {label} webhook body is a JSON object")
    classic = payload.get("freshdesk_webhook")
    if isinstance(classic, dict):
        t: Mapping[str, Any] = {
            "id": classic.get("ticket_id"),
            "subject": classic.get("ticket_subject"),
            "priority": classic.get("ticket_priority"),
            "status": classic.get("ticket_status"),
            "updated_at": classic.get("ticket_updated_at"),
        }
        req: Mapping[str, Any] = {
            "name": classic.get("ticket_requester_name"),
            "email": classic.get("ticket_requester_email"),
            "phone": first(classic.get("ticket_requester_phone"), classic.get("ticket_requester_mobile")),
            "language": classic.get("ticket_requester_language"),
        }
        declared = _blank(classic.get("event")) or _blank(payload.get("event"))
    elif str(payload.get("type", "")).startswith("zen:event-type:ticket.") and isinstance(
        payload.get("detail"), dict
    ):
        # A Zendesk webhook subscribed to ticket events rather than called by a trigger: the
        # ticket is in "detail" (its requester only as an id); ticket.created is a new ticket,
        # every other ticket event an update. Zendesk's event id keys it without the header.
        t, req = payload["detail"], {}
        declared = "ticket_created" if payload["type"].endswith(".created") else "ticket_updated"
        dedup_key = dedup_key or text(payload.get("id"))
    else:
        raw_ticket = payload.get("ticket")
        if not isinstance(raw_ticket, dict):
            return Event(
                source=source,
                kind="unrecognised",
                dedup_key=dedup_key or body_hash,
                received_at=received_at,
                summary=f"{label} webhook without a ticket object",
            )
        t = raw_ticket
        r = t.get("requester")
        req = r if isinstance(r, dict) else {}
        declared = _blank(payload.get("event"))
    status = lower(_blank(t.get("status")))
    priority = lower(_blank(t.get("priority")))
    ticket = Ticket(
        id=_blank(t.get("id")), priority=priority, status=status, subject=_blank(t.get("subject"))
    )
    kind = lower(declared)
    if kind not in ("ticket_created", "ticket_updated"):
        kind = "ticket_updated" if status in UPDATED_STATUSES else "ticket_created"
    updated = _blank(t.get("updated_at"))
    customer = Customer(
        name=_blank(req.get("name")),
        email=_blank(req.get("email")),
        phone=_blank(req.get("phone")) or _blank(req.get("mobile")),
        language=language_code(_blank(req.get("language")) or _blank(req.get("locale"))),
    )
    # Only a rendered time keys a delivery: text left where a placeholder was meant (Freshdesk
    # has none for the last-modified time) would make every later update a "duplicate".
    if dedup_key is None and ticket.id and updated and any(c.isdigit() for c in updated):
        dedup_key = f"{ticket.id}:{updated}"
    return Event(
        source=source,
        kind=kind,
        dedup_key=dedup_key or body_hash,
        received_at=received_at,
        occurred_at=timestamp(updated),
        summary=summary(
            f"{label} ticket {ticket.id or '?'} {'updated' if kind == 'ticket_updated' else 'created'}",
            f"{priority} priority" if priority else None,
            status,
            f'"{ticket.subject}"' if ticket.subject else None,
            customer.email or customer.name,
        ),
        customer=customer,
        ticket=ticket,
        external_type=text(declared),
    )
