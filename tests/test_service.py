"""The escalation service over a real SQLite store, recording channels and injected time."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from oncall.channels.base import Delivery, PageMessage
from oncall.channels.delivery import WINDOW
from oncall.core.models import Config, Event, Ticket
from oncall.scheduler import Scheduler
from oncall.service import Service
from oncall.settings import Settings
from oncall.store import incidents as store
from oncall.store.database import Connection, Database, open_database
from tests.recording import PEOPLE, RecordingChannel, event, hhmm, madrid, shop_config


@dataclass
class VirtualTime:
    """Seconds for the delivery dispatcher (rate limits, back-off) that pass instantly."""

    t: float = 0.0

    def clock(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class Shop:
    db: Database
    service: Service
    channels: dict[str, RecordingChannel]
    now: datetime = field(default_factory=lambda: madrid("2026-11-28 23:00"))
    config: Config = field(default_factory=shop_config)

    async def receive(self, ev: Event) -> int:
        self.now = max(self.now, ev.received_at)
        event_id, _ = await self.db.store_event(ev, b"{}")
        return event_id

    async def at(self, when: str | datetime) -> None:
        """Runs the scheduler's work at `when` (Madrid wall time or an instant)."""
        self.now = madrid(when) if isinstance(when, str) else when
        scheduler = Scheduler(self.service, clock=lambda: self.now)
        await scheduler.run_once()
        await self.service.drain()

    def sent(self) -> list[tuple[str, str]]:
        out = [(m.person.id, ch) for ch, c in self.channels.items() for m in c.sent]
        return sorted(out)

    def clear(self) -> None:
        for c in self.channels.values():
            c.sent.clear()


@pytest.fixture
async def shop(db_url: str) -> AsyncIterator[Shop]:
    db = open_database(db_url)
    await asyncio.to_thread(db.migrate)
    channels = {n: RecordingChannel(n) for n in ("telegram", "slack", "sms")}
    holder: list[Shop] = []
    vt = VirtualTime()
    service = Service(
        db,
        lambda: holder[0].config,
        channels,
        Settings(public_url="https://oncall.example", _env_file=None),  # type: ignore[call-arg]
        bundle_window=0.0,
        send_clock=vt.clock,
        send_sleep=vt.sleep,
    )
    s = Shop(db, service, channels)
    holder.append(s)
    yield s
    await service.aclose()
    await db.aclose()


async def saturday_burst(shop: Shop) -> None:
    for minute, name in zip(range(10, 15), ["Lucia", "Jordi", "Ines", "Pau", "Marc"], strict=True):
        await shop.receive(event(at=madrid(f"2026-11-28 23:{minute}"), customer=name))
        await shop.at(f"2026-11-28 23:{minute}")


class TestTheWeekendStory:
    async def test_five_failures_page_ana_once_at_2315_then_escalate_and_repeat(self, shop: Shop) -> None:
        await saturday_burst(shop)
        assert shop.sent() == []  # held: nobody paged during the hold
        await shop.at("2026-11-28 23:15")
        assert shop.sent() == [("ana", "slack"), ("ana", "telegram")]
        [page] = shop.channels["telegram"].sent
        assert "5 payment failures since 23:10, 189.90 EUR" in page.body
        assert page.sms.endswith("Reply 1a to ack, 1r to resolve " + page.ack_url)
        assert page.ack_url.startswith("https://oncall.example/ack/")

        shop.clear()
        await shop.at("2026-11-28 23:24")
        assert shop.sent() == []
        await shop.at("2026-11-28 23:25")
        assert shop.sent() == [("ana", "sms")]

        shop.clear()
        await shop.at("2026-11-28 23:35")
        assert shop.sent() == [("luis", "sms"), ("luis", "telegram"), ("owner", "sms"), ("owner", "telegram")]

        shop.clear()
        await shop.at("2026-11-28 23:50")
        assert shop.sent() == [("ana", "slack"), ("ana", "telegram")]  # the repeat

    async def test_an_ack_stops_it_and_every_page_sent_is_updated(self, shop: Shop) -> None:
        await saturday_burst(shop)
        await shop.at("2026-11-28 23:15")
        result = await shop.service.act(None, PEOPLE["ana"], "ack", "telegram", madrid("2026-11-28 23:17"))
        assert result.ok and result.text == "Incident 1 acknowledged by Ana García at 23:17"
        await shop.service.drain()
        updates = shop.channels["telegram"].updates + shop.channels["slack"].updates
        assert sorted(ref for ref, _ in updates) == ["slack-1", "telegram-1"]
        assert all("acknowledged by Ana García at 23:17" in text for _, text in updates)
        shop.clear()
        await shop.at("2026-11-28 23:40")
        assert shop.sent() == []
        again = await shop.service.act(1, PEOPLE["luis"], "resolve", "sms", madrid("2026-11-28 23:41"))
        assert again.ok and again.state == "resolved"
        view = await shop.service.incident(1)
        assert view is not None and [t["actor"] for t in view.timeline][-2:] == ["Ana García", "Luis Pérez"]

    async def test_restarting_between_steps_neither_repeats_nor_skips_a_page(self, shop: Shop) -> None:
        await saturday_burst(shop)
        await shop.at("2026-11-28 23:15")
        await shop.at("2026-11-28 23:15")  # a second round at the same instant (restart, 2nd instance)
        await shop.at("2026-11-28 23:26")  # oncall was down at 23:25: the step fires once, late
        await shop.at("2026-11-28 23:26")
        assert shop.sent() == [("ana", "slack"), ("ana", "sms"), ("ana", "telegram")]


class TestHoldAndCancel:
    async def test_a_failure_followed_by_the_same_orders_success_within_the_hold_pages_nobody(
        self, shop: Shop
    ) -> None:
        await shop.receive(event(at=madrid("2026-11-28 23:10"), order="5001"))
        await shop.at("2026-11-28 23:10")
        await shop.receive(event("payment_succeeded", madrid("2026-11-28 23:12"), order="5001"))
        await shop.at("2026-11-28 23:12")
        await shop.at("2026-11-28 23:30")
        assert shop.sent() == []
        [inc] = await shop.service.incidents(open_only=False)
        assert inc.state == "cancelled"

    async def test_a_solved_ticket_resolves_its_incident_and_pending_acknowledges_it(
        self, shop: Shop
    ) -> None:
        t = event("ticket_created", madrid("2026-11-28 23:10"), source="zendesk", amount=None)
        t = replace(t, ticket=Ticket("88", "urgent", "open", "Cobro doble"))
        await shop.receive(t)
        await shop.at("2026-11-28 23:10")
        assert shop.sent() == [("ana", "slack"), ("ana", "telegram")]
        upd = replace(t, kind="ticket_updated", dedup_key="upd-1", ticket=Ticket("88", "urgent", "pending"))
        await shop.receive(replace(upd, received_at=madrid("2026-11-28 23:12")))
        await shop.at("2026-11-28 23:12")
        assert (await shop.service.incident(1)).state == "acknowledged"  # type: ignore[union-attr]
        solved = replace(upd, dedup_key="upd-2", ticket=Ticket("88", "urgent", "solved"))
        await shop.receive(replace(solved, received_at=madrid("2026-11-28 23:20")))
        await shop.at("2026-11-28 23:20")
        assert (await shop.service.incident(1)).state == "resolved"  # type: ignore[union-attr]


class TestInHoursAndDigest:
    async def test_in_hours_events_go_to_the_team_channel_and_page_nobody(self, shop: Shop) -> None:
        await shop.receive(event(at=madrid("2026-11-25 10:00"), customer="Lucia"))
        await shop.at("2026-11-25 10:00")
        posts = shop.channels["slack"].sent
        assert [(m.person.slack, m.channel) for m in posts] == [("#soporte", "slack")]
        assert "fallo de pago desde stripe" in posts[0].body  # the team channel: the shop's language
        assert await shop.service.incidents(open_only=False) == []

    async def test_deferred_tickets_are_released_into_one_digest_when_business_hours_open(
        self, shop: Shop
    ) -> None:
        for i, at in enumerate(["2026-11-28 11:00", "2026-11-29 20:00"]):
            t = event("ticket_created", madrid(at), source="zendesk", amount=None)
            await shop.receive(replace(t, ticket=Ticket(f"7{i}", "low", "open", f"Pregunta {i}")))
            await shop.at(at)
        assert shop.sent() == []
        await shop.at("2026-11-30 08:59")
        assert shop.sent() == []
        await shop.at("2026-11-30 09:00")
        [digest] = shop.channels["slack"].sent
        assert digest.person.slack == "#soporte"
        assert "2 avisos esperaron al horario comercial" in digest.body  # the shop's language
        assert "ticket 70 (low): Pregunta 0" in digest.body and "ticket 71 (low): Pregunta 1" in digest.body
        states = {i.state for i in await shop.service.incidents(open_only=False)}
        assert states == {"resolved"}

    async def test_a_maintenance_window_stores_and_lists_events_and_pages_nobody(self, shop: Shop) -> None:
        from oncall.core.models import Maintenance

        window = Maintenance(
            madrid("2026-12-01 02:00"), madrid("2026-12-01 04:00"), "payment provider migration"
        )
        shop.config = shop_config(maintenance=(window,))
        await shop.receive(event(at=madrid("2026-12-01 02:30")))
        await shop.at("2026-12-01 02:30")
        await shop.at("2026-12-01 03:00")
        assert shop.sent() == []
        listed = await shop.db.transaction(store.maintenance_routes)
        assert [(r.action, r.note) for r in listed] == [
            ("maintenance", listed[0].note)
        ] and "payment provider migration" in (listed[0].note or "")


class TestChannels:
    async def test_a_channel_without_credentials_pages_the_console_and_says_so(self, shop: Shop) -> None:
        del shop.service.channels["slack"]
        await saturday_burst(shop)
        await shop.at("2026-11-28 23:15")
        assert shop.sent() == [("ana", "telegram")]
        view = await shop.service.incident(1)
        assert view is not None
        assert any("slack is not configured" in t["what"] for t in view.timeline)
        pages = await shop.db.transaction(lambda c: store.pages_of(c, 1))
        assert {(p.channel, p.sent_via, p.state) for p in pages} == {
            ("telegram", "telegram", "sent"),
            ("slack", "console", "sent"),
        }

    async def test_when_no_channel_of_a_step_reaches_a_person_they_get_another(self, shop: Shop) -> None:
        shop.channels["sms"].fail = True
        await saturday_burst(shop)
        await shop.at("2026-11-28 23:15")
        shop.clear()
        await shop.at("2026-11-28 23:25")  # the SMS step: Twilio is down
        await shop.at("2026-11-28 23:25")
        assert shop.sent() == [("ana", "slack"), ("ana", "telegram")]
        view = await shop.service.incident(1)
        assert view is not None
        assert any(
            "not reached by sms: paging by telegram, slack instead" in t["what"] for t in view.timeline
        )

    async def test_a_page_queued_before_an_ack_is_not_sent_and_nobody_else_is_paged(self, shop: Shop) -> None:
        await saturday_burst(shop)
        await shop.service.fire_due(madrid("2026-11-28 23:15"))  # step 1 queued, not yet sent
        acked = await shop.service.act(1, PEOPLE["ana"], "ack", "api", madrid("2026-11-28 23:15"))
        assert acked.ok
        await shop.at("2026-11-28 23:16")
        await shop.at("2026-11-28 23:17")
        assert shop.sent() == []
        pages = await shop.db.transaction(lambda c: store.pages_of(c, 1))
        assert {p.key.split(":", 4)[4] for p in pages} == {"telegram", "slack"}  # no fail-over
        view = await shop.service.incident(1)
        assert view is not None and view.state == "acknowledged"
        assert not any("not reached" in t["what"] for t in view.timeline)

    async def test_a_send_that_fails_while_the_incident_is_acknowledged_pages_no_other_channel(
        self, shop: Shop
    ) -> None:
        class AckedMeanwhile(RecordingChannel):
            async def send(self, message: PageMessage) -> Delivery:
                # Ana acknowledges by SMS while Telegram and Slack time out.
                await shop.service.act(1, PEOPLE["ana"], "ack", "sms", madrid("2026-11-28 23:15"))
                return Delivery(ok=False, error="timed out", retryable=False)

        shop.service.channels["telegram"] = AckedMeanwhile("telegram")
        shop.service.channels["slack"] = AckedMeanwhile("slack")
        await saturday_burst(shop)
        await shop.at("2026-11-28 23:15")
        await shop.at("2026-11-28 23:16")
        assert shop.channels["sms"].sent == []
        view = await shop.service.incident(1)
        assert view is not None and view.state == "acknowledged"
        assert not any("not reached" in t["what"] for t in view.timeline)


async def test_the_scheduler_sleeps_until_the_next_due_time(shop: Shop) -> None:
    await shop.receive(event(at=madrid("2026-11-28 23:10")))
    await shop.at("2026-11-28 23:10")
    due = await shop.service.next_due()
    assert due is not None and hhmm(due) == "23:15"
    assert due - shop.now == timedelta(minutes=5)


async def test_two_instances_firing_the_same_timers_page_once(shop: Shop, db_url: str) -> None:
    await saturday_burst(shop)
    other_db = open_database(db_url)
    other_channels = {n: RecordingChannel(n) for n in ("telegram", "slack", "sms")}
    vt = VirtualTime()
    other = Service(
        other_db,
        lambda: shop.config,
        other_channels,
        Settings(public_url="https://oncall.example", _env_file=None),  # type: ignore[call-arg]
        bundle_window=0.0,
        send_clock=vt.clock,
        send_sleep=vt.sleep,
    )
    now = madrid("2026-11-28 23:15")
    try:
        await asyncio.gather(
            Scheduler(shop.service, clock=lambda: now).run_once(),
            Scheduler(other, clock=lambda: now).run_once(),
        )
        await asyncio.gather(shop.service.drain(), other.drain())
    finally:
        await other.aclose()
        await other_db.aclose()
    both = shop.sent() + sorted((m.person.id, ch) for ch, c in other_channels.items() for m in c.sent)
    assert sorted(both) == [("ana", "slack"), ("ana", "telegram")]


async def test_the_owner_is_told_by_every_channel_they_have(shop: Shop) -> None:
    await shop.service.tell_fallback("Tienda Ejemplo: your edit was not applied", madrid("2026-11-28 23:00"))
    await shop.service.drain()
    assert shop.sent() == [("owner", "sms"), ("owner", "telegram")]  # Olga has no Slack id


async def test_after_a_crash_a_page_that_never_reached_its_channel_is_sent_and_one_that_may_have_is_not(
    shop: Shop,
) -> None:
    await saturday_burst(shop)
    at_1515 = madrid("2026-11-28 23:15")
    await shop.service.fire_due(at_1515)  # the step is decided and its two pages recorded...

    def dead_process(conn: Connection) -> None:
        # ...then a process claimed both, called Telegram, and died before recording anything.
        store.claim_pending_pages(conn, at_1515, "dead")
        store.mark_sending(conn, ["1:1:1:ana:telegram"], "dead", at_1515)

    await shop.db.transaction(dead_process)
    await shop.at("2026-11-28 23:16")  # the dead claim has not lapsed yet: nothing is sent twice
    assert shop.sent() == []
    await shop.service.recover(madrid("2026-11-28 23:21"))  # the next start
    await shop.at("2026-11-28 23:21")
    assert shop.sent() == [("ana", "slack")]  # never reached Slack: sent now; Telegram: maybe, so not
    pages = {p.key: p.state for p in await shop.db.transaction(lambda c: store.pages_of(c, 1))}
    assert pages == {"1:1:1:ana:telegram": "unknown", "1:1:1:ana:slack": "sent"}
    view = await shop.service.incident(1)
    assert view is not None and any("may not have been delivered" in t["what"] for t in view.timeline)


class TestOneBrokenItemDoesNotStopTheRest:
    async def test_an_event_that_cannot_be_routed_is_recorded_and_the_next_one_is_routed(
        self, shop: Shop, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import oncall.core.dispatch

        real = oncall.core.dispatch.route  # type: ignore[attr-defined]

        def route(ev: Event, *args: object, **kwargs: object) -> object:
            if ev.summary == "boom":
                raise RuntimeError("a bug")
            return real(ev, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(oncall.core.dispatch, "route", route)
        await shop.receive(replace(event(at=madrid("2026-11-28 23:10")), summary="boom"))
        await shop.receive(event(at=madrid("2026-11-28 23:10"), order="6001"))
        await shop.at("2026-11-28 23:10")
        [inc] = await shop.service.incidents()
        assert inc.state == "held" and inc.count == 1
        rows = await shop.db.transaction(
            lambda c: c.fetchall("SELECT action, note FROM event_routes ORDER BY event_id")
        )
        assert [(r[0], r[1]) for r in rows] == [("error", "RuntimeError: a bug"), ("page", None)]

    async def test_a_timer_that_fails_is_retried_a_minute_later_and_the_others_fire(
        self, shop: Shop, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import oncall.service.timers

        rules = (replace(shop.config.rules.rules[0], group_by=("order.id",)), *shop.config.rules.rules[1:])
        shop.config = shop_config(rules)
        for order in ("7001", "7002"):
            await shop.receive(event(at=madrid("2026-11-28 23:10"), order=order))
        await shop.at("2026-11-28 23:10")
        real = oncall.service.timers.step  # type: ignore[attr-defined]

        def step(inc: object, *args: object) -> object:
            if getattr(inc, "id", None) == 1:
                raise KeyError("a bug")
            return real(inc, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(oncall.service.timers, "step", step)
        await shop.at("2026-11-28 23:15")
        assert shop.sent() == [("ana", "slack"), ("ana", "telegram")]  # incident 2
        broken = await shop.service.incident(1)
        assert broken is not None and broken.state == "held"
        assert "internal error (KeyError: 'a bug'); trying again in a minute" in broken.timeline[-1]["what"]
        due = await shop.service.next_due()
        assert due is not None and hhmm(due) == "23:16"


async def test_an_incident_read_ahead_of_its_timer_and_changed_since_fires_as_it_is_now(shop: Shop) -> None:
    await saturday_burst(shop)
    assert await shop.service.read_ahead(madrid("2026-11-28 23:15")) == 1
    late = event(at=datetime.fromisoformat("2026-11-28T23:14:50+01:00"), customer="Nuria")
    await shop.receive(late)  # joins after the read-ahead: the stale copy must not be used
    await shop.service.route_events(late.received_at)
    await shop.at("2026-11-28 23:15")
    [page] = shop.channels["telegram"].sent
    assert "6 payment failures since 23:10" in page.body
    view = await shop.service.incident(1)
    assert view is not None and view.state == "triggered"
    assert any("joined (6 live events)" in t["what"] for t in view.timeline)  # not lost by the firing


def on_the_real_clock(shop: Shop) -> None:
    """The first rule at any hour with a 300 ms hold: for the real scheduler on the real clock."""
    first = shop.config.rules.rules[0]
    quick = replace(first, hold=timedelta(milliseconds=300), match=replace(first.match, hours="any"))
    shop.config = shop_config((quick, *shop.config.rules.rules[1:]))


async def test_the_real_scheduler_sleeps_until_the_hold_ends_instead_of_polling(shop: Shop) -> None:
    from datetime import UTC

    on_the_real_clock(shop)
    scheduler = Scheduler(shop.service)  # the real clock
    task = scheduler.start()
    try:
        await asyncio.sleep(0)
        await shop.receive(event(at=datetime.now(UTC)))
        shop.service.wake()  # what the web app's on_event_stored hook does
        async with asyncio.timeout(10):
            await shop.channels["telegram"].delivered.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    # start, the event, the end of the hold (and the pages it recorded): a handful of rounds,
    # not one per polling interval
    assert scheduler.rounds <= 6


async def test_after_a_snooze_ends_ana_is_paged_again(shop: Shop) -> None:
    await saturday_burst(shop)
    await shop.at("2026-11-28 23:15")
    snoozed = await shop.service.act(
        1, PEOPLE["ana"], "snooze", "telegram", madrid("2026-11-28 23:16"), timedelta(minutes=30)
    )
    assert snoozed.ok and snoozed.text == "Incident 1 snoozed by Ana García until 23:46"
    shop.clear()
    await shop.at("2026-11-28 23:45")
    assert shop.sent() == []
    await shop.at("2026-11-28 23:46")
    assert shop.sent() == [("ana", "slack"), ("ana", "telegram")]  # not swallowed as a repeat


async def test_a_store_outage_at_start_or_between_rounds_does_not_stop_the_scheduler(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`oncall serve` started while the database is down, or a blip while it sleeps, must not
    leave the server up with no escalation running."""
    from datetime import UTC

    from oncall.store.database import StoreUnavailable

    on_the_real_clock(shop)
    failures = {"recover": 1, "next_due": 1}
    for name in failures:
        real = getattr(shop.service, name)

        async def flaky(*args: object, _real: Any = real, _name: str = name) -> Any:
            if failures[_name]:
                failures[_name] -= 1
                raise StoreUnavailable("cannot open the sqlite database: it is down")
            return await _real(*args)

        monkeypatch.setattr(shop.service, name, flaky)

    async def keep_waking() -> None:  # instead of waiting out the 5 s retry pauses
        while True:
            shop.service.wake()
            await asyncio.sleep(0.05)

    scheduler = Scheduler(shop.service)  # the real clock
    task, waker = scheduler.start(), asyncio.create_task(keep_waking())
    try:
        await asyncio.sleep(0)
        await shop.receive(event(at=datetime.now(UTC)))
        async with asyncio.timeout(10):
            await shop.channels["telegram"].delivered.wait()
    finally:
        for t in (task, waker):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
    assert failures == {"recover": 0, "next_due": 0}


# ---------------------------------------------------------------------------------------------
# An ack or resolve while a page waits in a bundle (adversarial review r4)


class _Off(RecordingChannel):
    def configured(self) -> bool:
        return False


def _urgent_ticket(number: str, at: str) -> Event:
    t = event("ticket_created", madrid(at), source="zendesk", amount=None)
    return replace(t, ticket=Ticket(number, "urgent", "open", "Cobro doble"))


async def _second_incident_waits_in_a_bundle(shop: Shop) -> asyncio.Event:
    """Incident 1 pages Ana at 23:10; incident 2's pages at 23:11 wait in the bundle window
    until the returned event is set."""
    shop.service.dispatcher.window = WINDOW  # the fixture sends every page on its own
    window_over = asyncio.Event()

    async def bundle_wait(seconds: float) -> None:
        await window_over.wait()

    shop.service.dispatcher.sleep = bundle_wait
    await shop.receive(_urgent_ticket("88", "2026-11-28 23:10"))
    await shop.at("2026-11-28 23:10")
    await shop.receive(_urgent_ticket("89", "2026-11-28 23:11"))
    shop.now = madrid("2026-11-28 23:11")
    await Scheduler(shop.service, clock=lambda: shop.now).run_once()
    for _ in range(20):
        await asyncio.sleep(0)
    assert await shop.db.transaction(lambda conn: [p.state for p in store.pages_of(conn, 2)]) == [
        "queued",
        "queued",
    ]
    return window_over


class TestNothingGoesOutAfterAnAckOrResolve:
    @pytest.mark.parametrize("how", ["api", "helpdesk"])
    async def test_a_bundled_page_dropped_by_a_resolve_is_noted_as_resolved_and_not_as_logged(
        self, shop: Shop, how: str
    ) -> None:
        shop.service.channels["slack"] = _Off("slack")  # its pages go to the log
        window_over = await _second_incident_waits_in_a_bundle(shop)
        if how == "api":
            result = await shop.service.act(2, PEOPLE["ana"], "resolve", "api", madrid("2026-11-28 23:12"))
            assert result.ok
        else:
            solved = replace(_urgent_ticket("89", "2026-11-28 23:12"), kind="ticket_updated")
            await shop.receive(replace(solved, ticket=Ticket("89", "urgent", "solved")))
            await shop.at("2026-11-28 23:12")
        await shop.service.drain()
        window_over.set()
        await asyncio.sleep(0.05)
        timeline = [e["what"] for e in (await shop.service.incident(2)).timeline]  # type: ignore[union-attr]
        assert "telegram page to ana not sent: the incident was resolved" in timeline
        assert "slack page to ana not sent: the incident was resolved" in timeline
        assert not [w for w in timeline if "acknowledged" in w or "written to the log" in w], timeline
        assert len(shop.channels["telegram"].sent) == 1  # incident 1's page only

    @pytest.mark.parametrize("where", ["in the bundle window", "right before the provider call"])
    async def test_an_ack_by_another_process_stops_a_page_this_one_holds(
        self, shop: Shop, where: str
    ) -> None:
        """A second instance (or `oncall ack` in a terminal) acknowledges: this process's
        dispatcher never hears of it, only the store does."""
        window_over = await _second_incident_waits_in_a_bundle(shop)
        if where == "right before the provider call":
            shop.service.dispatcher.check = None
        other = Service(shop.db, lambda: shop.config, {}, shop.service.settings)
        result = await other.act(2, PEOPLE["ana"], "ack", "api", madrid("2026-11-28 23:12"))
        assert result.ok
        await other.aclose()
        window_over.set()
        await shop.service.drain()
        await asyncio.sleep(0.05)
        assert len(shop.channels["telegram"].sent) == 1 and len(shop.channels["slack"].sent) == 1
        timeline = [e["what"] for e in (await shop.service.incident(2)).timeline]  # type: ignore[union-attr]
        assert "telegram page to ana not sent: the incident was acknowledged" in timeline
        states = await shop.db.transaction(lambda conn: [p.state for p in store.pages_of(conn, 2)])
        assert states == ["failed", "failed"]

    async def test_an_ack_while_another_instance_fires_a_step_waits_for_it(
        self, shop: Shop, db_url: str
    ) -> None:
        if not db_url.startswith("postgresql"):
            pytest.skip("row locks between instances: PostgreSQL only")
        await shop.receive(_urgent_ticket("88", "2026-11-28 23:10"))
        await shop.at("2026-11-28 23:10")
        with psycopg.connect(db_url) as busy:  # another instance's transaction on incident 1
            busy.execute("SELECT id FROM incidents WHERE id = 1 FOR UPDATE")
            ack = asyncio.create_task(
                shop.service.act(1, PEOPLE["ana"], "ack", "telegram", madrid("2026-11-28 23:12"))
            )
            await asyncio.sleep(0.3)
            busy.rollback()
            result = await ack
        assert result.ok and result.state == "acknowledged", result.text


def _blocked_by(watch: psycopg.Connection[Any], holder: psycopg.Connection[Any]) -> int:
    """How many sessions wait, directly or in turn, for `holder`'s locks."""
    row = watch.execute(
        "WITH RECURSIVE w(pid) AS (SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
        " UNION SELECT a.pid FROM pg_stat_activity a JOIN w ON w.pid = ANY(pg_blocking_pids(a.pid)))"
        " SELECT count(*) FROM w",
        (holder.info.backend_pid,),
    ).fetchone()
    return int(row[0]) if row is not None else 0


async def _until_blocked(watch: psycopg.Connection[Any], holder: psycopg.Connection[Any], n: int) -> None:
    for _ in range(200):
        if _blocked_by(watch, holder) >= n:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"{n} sessions never queued for the lock")


async def test_a_timeline_note_never_undoes_what_another_instance_did_to_the_incident_meanwhile(
    shop: Shop, db_url: str
) -> None:
    """Instance A notes on incident 1's timeline that a reassurance failed, while instance B, in
    one routing round, resolves incident 1 (its Zendesk ticket was solved) and opens incident 2
    for the same ticket (re-opened as urgent). A's note used to re-save the whole incident as A
    had read it: it brought incident 1 back to `triggered` and took the ticket's open-incident
    slot from incident 2 (`UNIQUE constraint failed: incidents.open_key`, seen in CI)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("one SQLite writer: notes and routing never interleave; two instances need PostgreSQL")
    await shop.receive(_urgent_ticket("88", "2026-11-28 23:10"))
    await shop.at("2026-11-28 23:10")
    solved = _urgent_ticket("88", "2026-11-28 23:20")
    await shop.receive(replace(solved, kind="ticket_updated", ticket=replace(solved.ticket, status="solved")))
    await shop.receive(_urgent_ticket("88", "2026-11-28 23:20"))
    other_db = open_database(db_url)
    channels = {n: RecordingChannel(n) for n in ("telegram", "slack", "sms")}
    other = Service(other_db, lambda: shop.config, channels, shop.service.settings, bundle_window=0.0)
    note = "reassurance to lucia@example.com failed: 451 try again later"
    try:
        with psycopg.connect(db_url) as busy, psycopg.connect(db_url, autocommit=True) as watch:
            busy.execute("SELECT id FROM incidents WHERE id = 1 FOR UPDATE")  # a third instance's step
            routing = asyncio.create_task(other.route_events(madrid("2026-11-28 23:20")))
            await _until_blocked(watch, busy, 1)
            noting = asyncio.create_task(shop.service.plumbing.record_one(1, note))
            await _until_blocked(watch, busy, 2)
            busy.rollback()
            async with asyncio.timeout(10):
                assert await routing == 2
                await noting
    finally:
        await other.aclose()
        await other_db.aclose()
    states = await shop.db.transaction(
        lambda conn: [i.state for i in store.list_incidents(conn, open_only=False)]
    )
    assert states == ["triggered", "resolved"]  # incident 2, incident 1 (newest first)
    timeline = [e["what"] for e in (await shop.service.incident(1)).timeline]  # type: ignore[union-attr]
    assert timeline[-2:] == ["ticket 88 solved in zendesk", note]


async def test_a_success_routed_by_one_instance_never_undoes_an_ack_another_made_meanwhile(
    shop: Shop, db_url: str
) -> None:
    """Ana acknowledges incident 1 on instance A while instance B routes a payment success
    that cancels one of its two failures: B must cancel on top of the ack, not write back the
    incident as it read it before the ack committed."""
    if not db_url.startswith("postgresql"):
        pytest.skip("one SQLite writer: an ack and routing never interleave; two instances need PostgreSQL")
    for minute, order in ((10, "1001"), (11, "1002")):
        await shop.receive(event(at=madrid(f"2026-11-28 23:{minute}"), order=order, customer="Lucia"))
    await shop.at("2026-11-28 23:15")
    await shop.receive(event("payment_succeeded", madrid("2026-11-28 23:16"), order="1001", customer="Jordi"))
    other_db = open_database(db_url)
    other = Service(other_db, lambda: shop.config, {}, shop.service.settings, bundle_window=0.0)
    try:
        with psycopg.connect(db_url) as busy, psycopg.connect(db_url, autocommit=True) as watch:
            busy.execute("SELECT id FROM incidents WHERE id = 1 FOR UPDATE")  # a third instance's step
            ack = asyncio.create_task(
                shop.service.act(1, PEOPLE["ana"], "ack", "telegram", madrid("2026-11-28 23:16"))
            )
            await _until_blocked(watch, busy, 1)
            routing = asyncio.create_task(other.route_events(madrid("2026-11-28 23:16")))
            await _until_blocked(watch, busy, 2)
            busy.rollback()
            async with asyncio.timeout(10):
                assert (await ack).ok
                assert await routing == 1
    finally:
        await other.aclose()
        await other_db.aclose()
    inc = await shop.db.transaction(lambda conn: store.get_incident(conn, 1))
    assert inc is not None and inc.state == "acknowledged" and len(inc.live_events) == 1


async def test_pages_a_killed_process_held_in_a_bundle_go_out_at_the_next_start_not_minutes_later(
    shop: Shop, db_url: str
) -> None:
    """SQLite has one instance: at start, pages the previous run claimed but never sent (it was
    killed while they waited in the bundle window) are sent at once."""
    if not db_url.startswith("sqlite"):
        pytest.skip("several instances on PostgreSQL: a dead claim lapses after QUEUE_LEASE")
    await _second_incident_waits_in_a_bundle(shop)  # then the process dies (SIGKILL)
    channels = {n: RecordingChannel(n) for n in ("telegram", "slack", "sms")}
    restarted = Service(shop.db, lambda: shop.config, channels, shop.service.settings, bundle_window=0.0)
    try:
        shop.now = madrid("2026-11-28 23:12")
        await restarted.recover(shop.now)
        await Scheduler(restarted, clock=lambda: shop.now).run_once()
        await restarted.drain()
        assert [m.incident_ids for m in channels["telegram"].sent + channels["slack"].sent] == [(2,), (2,)]
    finally:
        await restarted.aclose()


async def test_a_page_another_instance_took_over_is_left_to_it_not_failed_over(shop: Shop) -> None:
    """This process held incident 2's pages in a bundle past their claim (`QUEUE_LEASE`); a
    second instance took them over and sent them. This one then neither marks them failed nor
    pages Ana by her other channels."""
    window_over = await _second_incident_waits_in_a_bundle(shop)
    channels = {n: RecordingChannel(n) for n in ("telegram", "slack", "sms")}
    other = Service(shop.db, lambda: shop.config, channels, shop.service.settings, bundle_window=0.0)
    try:
        shop.now = madrid("2026-11-28 23:14")
        await Scheduler(other, clock=lambda: shop.now).run_once()
        await other.drain()
        assert len(channels["telegram"].sent + channels["slack"].sent) == 2
        window_over.set()
        await asyncio.sleep(0.05)
        await shop.service.drain()
        pages = await shop.db.transaction(lambda conn: store.pages_of(conn, 2))
        assert [(p.key, p.state) for p in pages] == [
            ("2:1:1:ana:slack", "sent"),
            ("2:1:1:ana:telegram", "sent"),
        ]
        assert shop.sent() == [("ana", "slack"), ("ana", "telegram")]  # incident 1's, nothing more
    finally:
        await other.aclose()


async def test_a_page_waiting_long_for_a_rate_limit_is_not_claimed_again_by_the_same_process(
    shop: Shop,
) -> None:
    """Incident 2's pages wait for Ana's chats' 1/s limits longer than a claim lasts
    (`QUEUE_LEASE`): the process that holds them does not take them a second time."""
    limit_over = asyncio.Event()

    async def rate_limited(seconds: float) -> None:
        await limit_over.wait()

    shop.service.dispatcher.limiter._sleep = rate_limited
    await shop.receive(_urgent_ticket("88", "2026-11-28 23:10"))
    await shop.at("2026-11-28 23:10")
    await shop.receive(_urgent_ticket("89", "2026-11-28 23:11"))
    shop.now = madrid("2026-11-28 23:11")
    await Scheduler(shop.service, clock=lambda: shop.now).run_once()
    shop.now = madrid("2026-11-28 23:14")
    await Scheduler(shop.service, clock=lambda: shop.now).run_once()
    limit_over.set()
    await shop.service.drain()
    sent = [(m.incident_ids, m.channel) for c in shop.channels.values() for m in c.sent]
    assert sorted(sent) == [((1,), "slack"), ((1,), "telegram"), ((2,), "slack"), ((2,), "telegram")]


async def test_an_ack_of_one_incident_leaves_a_bundle_that_still_pages_for_another_unedited(
    shop: Shop,
) -> None:
    """Incidents 2 and 3 reach Ana as one bundled message per channel. Acknowledging 2 must not
    rewrite that message to "Incident 2 acknowledged" (erasing 3's page and buttons); once 3 is
    acknowledged too, the message is edited, for both."""
    window_over = await _second_incident_waits_in_a_bundle(shop)
    await shop.receive(_urgent_ticket("90", "2026-11-28 23:11"))
    await Scheduler(shop.service, clock=lambda: shop.now).run_once()
    for _ in range(20):
        await asyncio.sleep(0)
    window_over.set()
    await shop.service.drain()
    await asyncio.sleep(0.05)
    [_, bundle] = shop.channels["telegram"].sent
    assert bundle.incident_ids == (2, 3)
    await shop.service.act(2, PEOPLE["ana"], "ack", "telegram", madrid("2026-11-28 23:12"))
    await shop.service.drain()
    assert shop.channels["telegram"].updates == [] and shop.channels["slack"].updates == []
    await shop.service.act(3, PEOPLE["ana"], "ack", "telegram", madrid("2026-11-28 23:13"))
    await shop.service.drain()
    assert shop.channels["telegram"].updates == [
        (
            "telegram-2",
            "All 2 incidents of this message are settled."
            " Last: Incident 3 acknowledged by Ana García at 23:13",
        )
    ]


async def test_a_webhook_waiting_for_its_answer_commits_before_work_queued_ahead_of_it(db_url: str) -> None:
    db = open_database(db_url)
    await asyncio.to_thread(db.migrate)
    gate = threading.Event()
    order: list[str] = []

    def hold(conn: Connection) -> None:
        gate.wait(10)  # keeps the writer busy while the next two are queued

    def routing(conn: Connection) -> None:
        order.append("routing")

    def webhook(conn: Connection) -> None:
        order.append("webhook")

    held = asyncio.ensure_future(db.transaction(hold))
    queued = [
        asyncio.ensure_future(db.transaction(routing)),
        asyncio.ensure_future(db.transaction(webhook, urgent=True)),
    ]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(held, *queued)
    assert order == ["webhook", "routing"]
    await db.aclose()


async def test_routing_a_backlog_yields_to_waiting_webhooks_yet_routes_every_event_once(shop: Shop) -> None:
    for minute, name in zip(range(10, 15), ["Lucia", "Jordi", "Ines", "Pau", "Marc"], strict=True):
        await shop.receive(event(at=madrid(f"2026-11-28 23:{minute}"), customer=name))
    shop.db.others_waiting = lambda: True  # type: ignore[method-assign]  # a flood: always someone waiting
    routed = [await shop.service.route_events(madrid("2026-11-28 23:14")) for _ in range(6)]
    assert routed == [1, 1, 1, 1, 1, 0]  # one at a time, never none while some wait
    await shop.at("2026-11-28 23:15")
    [page] = shop.channels["telegram"].sent
    assert "5 payment failures since 23:10" in page.body


async def test_only_work_that_lets_nothing_leave_is_committed_without_waiting_for_the_disk(
    db_url: str,
) -> None:
    db = open_database(db_url)
    await asyncio.to_thread(db.migrate)

    def quiet(conn: Connection) -> None:
        conn.no_flush_needed()

    await db.transaction(quiet)
    assert db.unflushed == 1
    gate = threading.Event()
    held = asyncio.ensure_future(db.transaction(lambda conn: gate.wait(10)))
    together = [
        asyncio.ensure_future(db.transaction(quiet)),
        asyncio.ensure_future(db.transaction(lambda c: None)),
    ]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(held, *together)
    assert db.unflushed == 1  # a commit that holds work which did not say so waits for the disk
    await db.aclose()


async def test_routing_held_events_is_not_flushed_but_what_pages_is(shop: Shop) -> None:
    await shop.receive(event(at=madrid("2026-11-28 23:10"), customer="Lucia"))
    await shop.service.route_events(madrid("2026-11-28 23:10"))
    assert shop.db.unflushed == 1  # held: nothing leaves until the hold ends, from a flushed claim
    quiet = shop.db.unflushed
    await shop.at("2026-11-28 23:11")  # a round with nothing due: routing, which looks ahead
    assert shop.db.unflushed - quiet == 1 and shop.channels["telegram"].sent == []
    before = shop.db.transactions - shop.db.unflushed
    await shop.at("2026-11-28 23:15")
    assert shop.channels["telegram"].sent
    assert shop.db.transactions - shop.db.unflushed > before  # the page's claim waited for the disk


async def test_a_flood_round_is_one_transaction_each_yet_a_hold_ending_meanwhile_pages_at_once(
    shop: Shop,
) -> None:
    await shop.receive(event(at=madrid("2026-11-28 23:10"), customer="Lucia"))
    await shop.at("2026-11-28 23:10")  # held until 23:15
    await shop.receive(event(at=madrid("2026-11-28 23:12"), customer="Jordi"))
    before = shop.db.transactions
    await shop.at("2026-11-28 23:12")
    # Routing Jordi's failure is one transaction, which also read that no timer is due and no
    # page waits, and found no more events (not one more round to find that out, and not three
    # more transactions each to find out the rest).
    assert shop.db.transactions - before == 1 and shop.sent() == []
    await shop.receive(event(at=madrid("2026-11-28 23:15"), customer="Ines"))
    await shop.at("2026-11-28 23:15")  # events still arriving as the hold ends
    assert shop.sent() == [("ana", "slack"), ("ana", "telegram")]
    [page] = shop.channels["telegram"].sent
    assert "3 payment failures since 23:10" in page.body


async def test_sqlite_keeps_its_temporary_data_in_memory_not_in_var_tmp(shop: Shop, db_url: str) -> None:
    """A statement journal or a sort of the writer's goes in memory: on disk SQLite made, unlinked
    and wrote a file in /var/tmp about 60 times a second in a flood, and a full or read-only
    /var/tmp would fail webhooks (which a test run as root cannot make happen)."""
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's temporary files only")
    row = await shop.db.transaction(lambda conn: conn.fetchone("PRAGMA temp_store"))
    assert row is not None and row[0] == 2  # MEMORY
