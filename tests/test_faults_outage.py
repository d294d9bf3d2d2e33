"""A two-minute Telegram outage while pages fall due (real time: this test takes ~2.5 min).

A real `oncall serve` pages each incident by Telegram. The fake Telegram answers every call
500 for a minute, then hangs every call for a minute (the SDK gives up on each after its 10 s
time-out), then works again. Meanwhile a new incident falls due every 8 s, each for a person
of its own (so no page waits in a bundle); two more fall due after Telegram is back.

Counted at the fakes: every incident reached its person, never twice by a channel; one whose
Telegram tries all failed went by the fail-over channels (Slack and SMS) and its timeline says
so, and Telegram coming back sends it no second page; after the outage, pages go by Telegram.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio
from tests.live import (
    Server,
    channel_env,
    deliveries,
    failure,
    paging_shop,
    phone,
    slack_dm,
    telegram_chat,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.fault, pytest.mark.slow]

PHASE = 60.0  # seconds of 500s, then as many of hangs
EVERY = 8.0  # a new incident falls due this often during the outage
AFTER = 2  # incidents after Telegram is back
# A page that falls due this long before Telegram is back has used its three tries (hangs of
# 10 s each and the back-off between them) before it is back: it must have failed over.
SURE = 40.0


def test_a_two_minute_telegram_outage_pages_by_fail_over_and_nothing_twice(
    tmp_path: Path, telegram: FakeTelegram, slack: FakeSlack, twilio: FakeTwilio
) -> None:
    during = int(2 * PHASE // EVERY)
    people = during + AFTER
    rules, rotas = paging_shop(people, [("telegram", "30m")], hold="1s")
    write_config(tmp_path, rules, rotas)
    server = Server(tmp_path, env=channel_env(telegram=telegram, slack=slack, twilio=twilio))
    due: dict[int, float] = {}  # person -> seconds into the outage their page fell due
    try:
        server.start()
        began = time.monotonic()
        telegram.down = "500"
        for n in range(1, during + 1):
            at = (n - 1) * EVERY
            time.sleep(max(0.0, began + at - time.monotonic()))
            if at >= PHASE:
                telegram.down = "hang"
            assert server.post(failure(n, f"o{n}", f"outage-{n}")).status_code == 202
            due[n] = time.monotonic() - began + 1.0  # the hold
        time.sleep(max(0.0, began + 2 * PHASE - time.monotonic()))
        telegram.down = None
        back = time.monotonic() - began
        failed_calls = len(telegram.called("sendMessage"))
        for n in range(during + 1, people + 1):
            assert server.post(failure(n, f"o{n}", f"after-{n}")).status_code == 202

        def settled() -> bool:
            rows = server.query("SELECT state, count(*) FROM pages GROUP BY state")
            return len(server.query("SELECT id FROM incidents WHERE state = 'triggered'")) == people and all(
                s in ("sent", "failed") for s, _ in rows
            )

        assert wait_for(settled, 90, interval=0.5), server.query("SELECT key, state FROM pages")
        time.sleep(2.0)  # anything that would page a second time has had its chance
    finally:
        server.stop()

    person = {
        iid: int(g.removeprefix("order=o")) for iid, g in server.query("SELECT id, group_key FROM incidents")
    }
    reached = deliveries(telegram=telegram, slack=slack, twilio=twilio)
    assert set(reached.values()) == {1}, {k: v for k, v in reached.items() if v != 1}  # nothing twice
    routes: dict[int, set[str]] = {n: set() for n in person.values()}
    for iid, channel, to in reached:
        n = person[iid]
        assert to == {"telegram": telegram_chat(n), "slack": slack_dm(n), "sms": phone(n)}[channel]
        routes[n].add(channel)
    notes = dict(server.query("SELECT id, data FROM incidents"))
    for iid, n in person.items():
        assert routes[n] in ({"telegram"}, {"slack", "sms"}), (n, routes[n])  # reached, by one way
        failed_over = routes[n] == {"slack", "sms"}
        assert failed_over == ("not reached by telegram: paging by slack, sms instead" in notes[iid]), n
        if n in due and due[n] < back - SURE:
            assert failed_over, f"person {n}: page due at {due[n]:.0f} s went by Telegram during the outage"
        if n not in due:
            assert routes[n] == {"telegram"}, f"person {n}: paged after the outage by {routes[n]}"
    over = sorted(n for n, r in routes.items() if r == {"slack", "sms"})
    print(
        f"\nTelegram down {back:.0f} s ({PHASE:g} s of 500s, then hangs): {failed_calls} Telegram calls"
        f" refused; {len(due)} incidents fell due meanwhile, {len(over)} went by Slack + SMS, "
        f"{len(due) - len(over)} by Telegram once it was back; {AFTER} after it: by Telegram; "
        f"no page twice ({sum(reached.values())} deliveries)"
    )
