"""The incident state machine and escalation (SPEC §5), as one pure function:

    step(incident, input, now, world) -> (incident, actions)

States::

    held ──► triggered ──► acknowledged ──► resolved
      │          │  ▲            │
      │          │  └── snooze ──┘
      │          └──────────────────────► resolved
      └──► cancelled        deferred ──► (released into the digest) resolved

Every transition appends a timeline entry (time, cause, actor). Nothing here sends, stores or
sleeps: the shell (`oncall.service`) stores the returned incident, schedules `wake_at`, and
carries out the actions (`Page`, `Post`, `Reassure`, `Update`).

The incident record is `oncall.core.state`, the inputs and actions `oncall.core.effects`, the
outside world as the machine sees it `oncall.core.world`; their names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache

from oncall.core.effects import (
    Acted,
    Action,
    Cancelling,
    Input,
    Joined,
    Outcome,
    Page,
    Post,
    Reassure,
    Released,
    Tick,
    TicketChanged,
    Update,
    WakeAt,
)
from oncall.core.failover import channels_for
from oncall.core.models import CHANNELS, Event, Rule, Target
from oncall.core.state import OPEN_STATES, STATES, SYSTEM, Entry, Incident, Paged, State, event_time
from oncall.core.words import Words, words
from oncall.core.world import World, make_world, resolve_targets

__all__ = [
    "OPEN_STATES",
    "STATES",
    "SYSTEM",
    "Acted",
    "Action",
    "Cancelling",
    "Entry",
    "Incident",
    "Input",
    "Joined",
    "Outcome",
    "Page",
    "Paged",
    "Post",
    "Reassure",
    "Released",
    "State",
    "Tick",
    "TicketChanged",
    "Update",
    "WakeAt",
    "World",
    "channels_for",
    "event_time",
    "make_world",
    "open_incident",
    "run_forward",
    "same_subject",
    "step",
]

# ---------------------------------------------------------------------------------------------
# Opening


def open_incident(
    incident_id: int, rule: Rule, key: str, event: Event, now: datetime, world: World
) -> Outcome:
    """A new incident for the first event of a group. `page` rules hold it (and trigger at
    once when `hold` is zero); `defer` rules set it aside for the digest."""
    # Built as it ends up in one go, not changed step by step (this runs for every new group).
    state: State
    if rule.action == "defer":
        state, wake_at = "deferred", None
        entry = Entry(now, f"deferred by rule “{rule.name}” until business hours open", SYSTEM)
    else:
        state, wake_at = "held", now + rule.hold
        what = f"{_describe(event)}: held until {_hm(wake_at, world)} by rule “{rule.name}”"
        entry = Entry(now, what, event.source)
    inc = Incident(
        id=incident_id,
        rule=rule.name,
        group_key=key,
        state=state,
        created_at=now,
        updated_at=now,
        policy=rule.policy,
        threshold=max(1, rule.threshold),
        cancel_on=rule.cancel_on,
        auto_resolve=rule.auto_resolve,
        reassure=rule.reassure,
        events=(event,),
        wake_at=wake_at,
        timeline=(entry,),
    )
    if wake_at is None:
        return Outcome(inc, (WakeAt(None),), text="deferred")
    if rule.hold <= timedelta(0):
        return _end_hold(inc, now, world)
    return Outcome(inc, (WakeAt(wake_at),), text="held")


# ---------------------------------------------------------------------------------------------
# The step function


def step(incident: Incident, inp: Input, now: datetime, world: World) -> Outcome:
    """Apply one input to an incident at `now`."""
    if isinstance(inp, Joined):
        return _join(incident, inp.event, now, world)
    if isinstance(inp, Tick):
        return _tick(incident, now, world)
    if isinstance(inp, Cancelling):
        return _cancelling(incident, inp.event, now, world)
    if isinstance(inp, TicketChanged):
        return _ticket(incident, inp.event, now, world)
    if isinstance(inp, Acted):
        return _acted(incident, inp, now, world)
    return _released(incident, inp, now)


def _join(inc: Incident, event: Event, now: datetime, world: World) -> Outcome:
    if not inc.is_open:
        return Outcome(inc, ok=False, text=f"incident {inc.id} is {inc.state}")
    n = len(inc.live_events) + 1
    inc = replace(
        inc,
        events=(*inc.events, event),
        updated_at=now,
        timeline=(*inc.timeline, Entry(now, f"{_describe(event)} joined ({n} live events)", event.source)),
    )
    # Paging has started, so the customers already got their message at the end of the hold:
    # a customer arriving now must hear from the shop too (SPEC §5: every customer).
    if inc.reassure and inc.state in ("triggered", "acknowledged") and not world.is_open(now):
        return Outcome(inc, (Reassure(inc.reassure, (event,)),), text="joined")
    return Outcome(inc, text="joined")


def _tick(inc: Incident, now: datetime, world: World) -> Outcome:
    if inc.wake_at is None or now < inc.wake_at:
        return Outcome(inc, ok=False, text="not due")
    if inc.state == "held":
        return _end_hold(inc, now, world)
    if inc.state == "acknowledged":  # a snooze ran out
        return _fire(inc, now, world, restart="snooze ended: escalation starts again")
    if inc.state == "triggered":
        return _fire(inc, now, world)
    return Outcome(replace(inc, wake_at=None), (WakeAt(None),), ok=False, text="not due")


def _end_hold(inc: Incident, now: datetime, world: World) -> Outcome:
    live = len(inc.live_events)
    if live == 0:
        what = "cancelled at the end of the hold: every event was cancelled"
        inc = _to(inc, "cancelled", now, what, SYSTEM)
        return Outcome(replace(inc, wake_at=None), (WakeAt(None),), text="cancelled")
    if live < inc.threshold:
        what = f"cancelled at the end of the hold: {_n(live, 'live event')}, threshold {inc.threshold}"
        inc = _to(inc, "cancelled", now, what, SYSTEM)
        return Outcome(replace(inc, wake_at=None), (WakeAt(None),), text="cancelled")
    out = _fire(inc, now, world, restart=f"triggered: {_n(live, 'live event')} at the end of the hold")
    extra: tuple[Action, ...] = ()
    if inc.reassure and not world.is_open(now):
        extra = (Reassure(inc.reassure),)
    return Outcome(out.incident, (*out.actions, *extra), text="triggered")


def _fire(inc: Incident, now: datetime, world: World, *, restart: str | None = None) -> Outcome:
    """Move to the next step of the policy (or the next round) and page its targets.

    `restart` (the timeline's reason) moves the incident to `triggered` and starts the policy
    from its first step: the end of a hold, the end of a snooze. One `replace` for all of it:
    this runs for every due timer."""
    policy = world.config.rules.policies.get(inc.policy or "")
    steps = policy.steps if policy is not None else ()
    rnd, idx = (0, 0) if restart else (inc.round, inc.step_index + 1)
    cycle = inc.cycle + 1 if restart and inc.paged else inc.cycle
    prefix = f"{inc.id}" if cycle == 0 else f"{inc.id}.{cycle}"
    if idx >= len(steps) and steps:
        rnd, idx = rnd + 1, 0
    repeat = policy.repeat if policy is not None else 0
    entries: list[Entry] = [Entry(now, restart, SYSTEM)] if restart else []
    if not steps:
        if inc.step_index >= 0 and not restart:  # the fallback was paged already: nothing more to do
            return Outcome(replace(inc, wake_at=None), (WakeAt(None),), text="exhausted")
        entries.append(Entry(now, f"policy “{inc.policy}” is unknown or empty: paging the fallback", SYSTEM))
        targets: Sequence[Target] = (world.config.rules.shop.fallback,)
        via: Sequence[str] = CHANNELS
        ack_within = None
    elif rnd > repeat:
        inc = replace(
            inc,
            wake_at=None,
            updated_at=now,
            timeline=(
                *inc.timeline,
                Entry(now, "escalation exhausted: every step ran and nobody acknowledged", SYSTEM),
            ),
        )
        return Outcome(inc, (WakeAt(None),), text="exhausted")
    else:
        s = steps[idx]
        targets, via, ack_within = s.notify, s.via, s.ack_within
    people, notes = resolve_targets(targets, now, world)
    entries += [Entry(now, n, SYSTEM) for n in notes]
    pages: list[Page] = []
    paged: list[Paged] = []
    described: list[str] = []
    for pid in people:
        person = world.config.people[pid]
        chans, note = channels_for(person, via)
        if note:
            entries.append(Entry(now, note, SYSTEM))
        for ch in chans:
            key = f"{prefix}:{rnd + 1}:{idx + 1}:{pid}:{ch}"
            pages.append(Page(pid, ch, idx + 1, rnd + 1, key))
            paged.append(Paged(pid, ch, now, idx + 1, rnd + 1))
        described.append(f"{person.name} by {', '.join(chans)}")
    where = f"step {idx + 1}" + (f" of policy “{inc.policy}”" if steps else "")
    where += f", round {rnd + 1}" if rnd else ""
    if described:
        entries.append(Entry(now, f"{where}: paged {'; '.join(described)}", SYSTEM))
    else:
        entries.append(Entry(now, f"{where}: nobody could be paged", SYSTEM))
    wake = now + ack_within if ack_within is not None else None
    inc = replace(
        inc,
        state="triggered",
        acknowledged_by=None if restart else inc.acknowledged_by,
        round=rnd,
        step_index=idx,
        cycle=cycle,
        wake_at=wake,
        updated_at=now,
        paged=(*inc.paged, *paged),
        timeline=(*inc.timeline, *entries),
    )
    return Outcome(inc, (*pages, WakeAt(wake)), text="paged")


def _cancelling(inc: Incident, event: Event, now: datetime, world: World) -> Outcome:
    if not inc.is_open or event.kind not in inc.cancel_on:
        return Outcome(inc, ok=False, text="no effect")
    hit = frozenset(i for i, e in enumerate(inc.events) if i not in inc.cancelled and same_subject(e, event))
    if not hit:
        return Outcome(inc, ok=False, text="no effect")
    inc = replace(inc, cancelled=inc.cancelled | hit, updated_at=now)
    live = len(inc.live_events)
    what = f"{_describe(event)} cancels {_n(len(hit), 'event')} ({live} live)"
    inc = replace(inc, timeline=(*inc.timeline, Entry(now, what, event.source)))
    if live:
        return Outcome(inc, text="cancelled some")
    if inc.state in ("held", "deferred"):
        inc = _to(inc, "cancelled", now, "cancelled: every event was cancelled", event.source)
        return Outcome(replace(inc, wake_at=None), (WakeAt(None),), text="cancelled")
    if inc.auto_resolve:
        inc = _to(inc, "resolved", now, "resolved automatically: every event was cancelled", event.source)
        inc = replace(inc, wake_at=None, resolved_by=event.source)
        said = words("update.auto_resolved", id=inc.id, at=_hm(now, world), what=_describe(event))
        return _settles(inc, said)
    return Outcome(inc, text="cancelled all")


def same_subject(failure: Event, cancel: Event) -> bool:
    """Whether `cancel` is about the same thing as `failure` (SPEC §2.1): the same order, or
    the same customer by e-mail or phone, so a customer who gave up on the failed order and
    paid for a new one cancels it too."""
    shared = subject_keys(failure) & subject_keys(cancel)
    return any(not key.startswith("ticket:") for key in shared)


def subject_keys(event: Event) -> frozenset[str]:
    """What a later event may refer to this one by: its order id, its customer's e-mail (case
    and spaces aside) and phone (formatting aside: "+34 600-111 222" is "0034600111222"), its
    ticket. The store indexes open incidents by these."""
    keys = set()
    if event.order.id:
        keys.add(f"order:{event.order.id}")
    email = (event.customer.email or "").strip().lower()
    if email:
        keys.add(f"email:{email}")
    phone = "".join(c for c in event.customer.phone or "" if c.isdigit()).removeprefix("00")
    if phone:
        keys.add(f"phone:{phone}")
    if event.ticket.id:
        keys.add(f"ticket:{event.ticket.id}")
    return frozenset(keys)


def _ticket(inc: Incident, event: Event, now: datetime, world: World) -> Outcome:
    status = (event.ticket.status or "").strip().lower().replace("_", "-").replace(" ", "-")
    where = f"ticket {event.ticket.id} {status} in {event.source}"
    if status in ("solved", "closed", "resolved"):
        return _resolve_inc(inc, now, where, event.source, world)
    if status in ("pending", "on-hold", "hold", "waiting-on-customer"):
        return _ack(inc, now, where, event.source, world)
    return Outcome(inc, ok=False, text="no effect")


def _acted(inc: Incident, act: Acted, now: datetime, world: World) -> Outcome:
    if act.verb == "resolve":
        return _resolve_inc(inc, now, f"resolved by {act.actor} via {act.via}", act.actor, world)
    if act.verb == "ack":
        return _ack(inc, now, f"acknowledged by {act.actor} via {act.via}", act.actor, world)
    if inc.state not in ("triggered", "acknowledged"):
        return _no_effect(inc, _not_open(inc))
    length = act.snooze_for or timedelta(minutes=30)
    until = now + length
    if inc.state == "triggered":
        inc = _to(inc, "acknowledged", now, f"acknowledged by {act.actor} via {act.via}", act.actor)
    what = f"snoozed by {act.actor} via {act.via} until {_hm(until, world)}"
    inc = replace(
        inc,
        wake_at=until,
        acknowledged_by=act.actor,
        acknowledged_at=inc.acknowledged_at or now,
        updated_at=now,
        timeline=(*inc.timeline, Entry(now, what, act.actor)),
    )
    return _settles(inc, words("update.snoozed", id=inc.id, who=act.actor, until=_hm(until, world)), until)


def _ack(inc: Incident, now: datetime, what: str, actor: str, world: World) -> Outcome:
    if inc.state == "acknowledged" and inc.wake_at is not None:
        # Snoozed, then acknowledged: the ack stops the escalation for good, the snooze's
        # restart is called off.
        what = f"{what}: the snooze is over, the escalation will not start again"
        inc = replace(
            inc,
            wake_at=None,
            acknowledged_by=actor,
            updated_at=now,
            timeline=(*inc.timeline, Entry(now, what, actor)),
        )
        return _settles(inc, words("update.acknowledged", id=inc.id, who=actor, at=_hm(now, world)))
    if inc.state == "acknowledged":
        return _no_effect(inc, words("update.already_acknowledged", id=inc.id, who=inc.acknowledged_by))
    if inc.state not in ("held", "triggered"):
        return _no_effect(inc, _not_open(inc))
    inc = _to(inc, "acknowledged", now, what, actor)
    inc = replace(inc, wake_at=None, acknowledged_by=actor, acknowledged_at=inc.acknowledged_at or now)
    return _settles(inc, words("update.acknowledged", id=inc.id, who=actor, at=_hm(now, world)))


def _resolve_inc(inc: Incident, now: datetime, what: str, actor: str, world: World) -> Outcome:
    if not inc.is_open:
        return _no_effect(inc, _not_open(inc))
    inc = _to(inc, "resolved", now, what, actor)
    inc = replace(inc, wake_at=None, resolved_by=actor, acknowledged_at=inc.acknowledged_at or now)
    return _settles(inc, words("update.resolved", id=inc.id, who=actor, at=_hm(now, world)))


def _released(inc: Incident, rel: Released, now: datetime) -> Outcome:
    if inc.state != "deferred":
        return _no_effect(inc, _not_open(inc))
    inc = _to(inc, "resolved", now, f"released into the digest posted to {rel.where}", SYSTEM)
    return Outcome(replace(inc, wake_at=None, resolved_by=SYSTEM), (WakeAt(None),), text="released")


def _not_open(inc: Incident) -> Words:
    """Why an action changes nothing, in words for the person who tried it."""
    if inc.state in ("held", "deferred"):
        return words("update.not_paged", id=inc.id, state=inc.state)
    if inc.state == "triggered":
        return words("update.not_acknowledged", id=inc.id)
    by = inc.resolved_by if inc.state == "resolved" else None
    if by and by != SYSTEM:
        return words("update.already_by", id=inc.id, state=inc.state, who=by)
    return words("update.already", id=inc.id, state=inc.state)


def _settles(inc: Incident, said: Words, until: datetime | None = None) -> Outcome:
    """The incident was acknowledged, resolved or snoozed: its delivered pages say so."""
    return Outcome(inc, (WakeAt(until), Update(said.en, said)), text=said.en, words=said)


def _no_effect(inc: Incident, said: Words) -> Outcome:
    return Outcome(inc, ok=False, text=said.en, words=said)


# ---------------------------------------------------------------------------------------------
# Helpers


def _to(inc: Incident, state: State, now: datetime, what: str, actor: str) -> Incident:
    return replace(inc, state=state, updated_at=now, timeline=(*inc.timeline, Entry(now, what, actor)))


def _hm(t: datetime, world: World | None) -> str:
    """Clock time for timeline texts, in the shop's timezone when known."""
    if world is not None and t.tzinfo is not None:
        # A flood writes "held until 23:15" for every event: worked out once a minute.
        return _hm_at(int(t.timestamp()) // 60, world.config.rules.shop.timezone)
    return t.strftime("%H:%M")


@lru_cache(maxsize=64)
def _hm_at(minute: int, tz: tzinfo) -> str:
    """The clock time in `tz` of the minute since the epoch (the zones' offsets are whole
    minutes since 1972, so the seconds never change it)."""
    return datetime.fromtimestamp(minute * 60, tz).strftime("%H:%M")


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _describe(event: Event) -> str:
    bits = [event.kind]
    if event.order.number or event.order.id:
        bits.append(f"order {event.order.number or event.order.id}")
    if event.ticket.id:
        bits.append(f"ticket {event.ticket.id}")
    return " ".join(bits)


def run_forward(incident: Incident, world: World, *, limit: int = 100) -> list[tuple[datetime, Outcome]]:
    """Every timer of `incident` fired in turn, as if nobody acknowledged: what `oncall
    simulate` shows. Stops when nothing more is scheduled (or after `limit` steps)."""
    out: list[tuple[datetime, Outcome]] = []
    while incident.wake_at is not None and len(out) < limit:
        at = incident.wake_at
        result = step(incident, Tick(), at, world)
        out.append((at, result))
        incident = result.incident
    return out
