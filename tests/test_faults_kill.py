"""SIGKILL at random moments during a burst of 500 webhooks and their escalations.

A real `oncall serve` (SQLite, real clock) takes 500 payment failures (100 orders, 5 each,
20 people) posted at 25 a second by four client threads that retry like a platform does. Each
order is an incident held 2 s, then paged by Telegram, then 3 s later by Slack. Meanwhile the
server is killed with SIGKILL several times, each time after a random uptime (seeded; the seed
is printed, `ONCALL_FAULT_SEED=N` repeats it) and restarted at once.

Counted afterwards, in the database and at the fake Telegram and Slack servers:
- every delivery answered 2xx is stored (under the event id it was answered with), and all 500
  are there, each once;
- every page that fell due was recorded (two per incident: none skipped) and reached the
  provider exactly once, except a page whose provider call was in flight when the process
  died: it is marked `unknown` on the timeline and not sent again (at most once, the limit the
  product documents). How many pages ended `unknown`, and how many of those never reached the
  provider (the kill fell between marking the page `sending` and the request arriving), is
  printed.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram
from tests.live import (
    Burst,
    Server,
    channel_env,
    deliveries,
    failure,
    paging_shop,
    person_id,
    slack_dm,
    telegram_chat,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.fault, pytest.mark.slow]

PEOPLE = 20
ORDERS = 100
PER_ORDER = 5
RATE = 25.0  # webhooks a second: the burst lasts about 20 s, through the kills
KILLS = 6
UPTIME = (0.2, 5.0)  # seconds a server runs before it is killed, uniformly drawn


def person_of(order: int) -> int:
    return order % PEOPLE + 1


def test_sigkill_at_random_moments_loses_no_event_and_sends_every_page_once(
    tmp_path: Path, telegram: FakeTelegram, slack: FakeSlack
) -> None:
    seed = int(os.environ.get("ONCALL_FAULT_SEED") or random.SystemRandom().randrange(1_000_000))
    rng = random.Random(seed)
    print(f"\nfault seed {seed} (ONCALL_FAULT_SEED={seed} draws the same kill times)")
    rules, rotas = paging_shop(PEOPLE, [("telegram", "3s"), ("slack", "3s")], hold="2s")
    write_config(tmp_path, rules, rotas)
    server = Server(tmp_path, env=channel_env(telegram=telegram, slack=slack))
    payloads = [failure(person_of(k), f"o{k}", f"e{k}-{j}") for k in range(ORDERS) for j in range(PER_ORDER)]
    burst = Burst([server.url], payloads, rate=RATE)
    began = time.monotonic()
    uptimes: list[float] = []
    try:
        server.start()
        burst.start()
        for _ in range(KILLS):
            uptimes.append(rng.uniform(*UPTIME))
            time.sleep(uptimes[-1])
            server.kill()
            server.start()
        assert burst.join(120), f"seed {seed}: not every delivery was accepted: {burst.outcomes()}"

        def settled() -> bool:
            open_pages = server.query(
                "SELECT count(*) FROM pages WHERE state IN ('pending', 'queued', 'sending')"
            )
            running = server.query("SELECT count(*) FROM incidents WHERE wake_at IS NOT NULL")
            incidents = server.query("SELECT count(*) FROM incidents")
            return bool(open_pages[0][0] == 0 and running[0][0] == 0 and incidents[0][0] == ORDERS)

        done = wait_for(settled, 180, interval=0.5)
        states = server.query("SELECT state, count(*) FROM pages GROUP BY state")
        assert done, f"seed {seed}: escalations did not finish; pages by state {states}\n{server.tail()}"
        time.sleep(1.0)  # anything that would page a second time has had its chance
    finally:
        burst.stop()
        server.stop()
    elapsed = time.monotonic() - began

    # Every 2xx is stored under the id it was answered with, and every delivery once.
    stored = dict(server.query("SELECT dedup_key, id FROM events WHERE source = 'generic'"))
    lost = {d: i for d, i in burst.accepted.items() if stored.get(d) != i}
    assert not lost, f"seed {seed}: answered 2xx but not stored: {lost}"
    assert len(stored) == len(payloads) == server.query("SELECT count(*) FROM events")[0][0]

    # Two pages recorded per incident (none skipped, none extra), each settled.
    incidents = dict(server.query("SELECT id, group_key FROM incidents"))
    assert sorted(incidents.values()) == sorted(f"order=o{k}" for k in range(ORDERS))
    pages = {key: state for key, state in server.query("SELECT key, state FROM pages")}
    expected: dict[str, tuple[int, str, str]] = {}
    for iid, group in incidents.items():
        n = person_of(int(group.removeprefix("order=o")))
        expected[f"{iid}:1:1:{person_id(n)}:telegram"] = (iid, "telegram", telegram_chat(n))
        expected[f"{iid}:1:2:{person_id(n)}:slack"] = (iid, "slack", slack_dm(n))
    assert set(pages) == set(expected), f"seed {seed}: pages recorded differ from the steps that fell due"
    assert set(pages.values()) <= {"sent", "unknown"}, f"seed {seed}: {sorted(pages.items())}"

    # At the providers: every page exactly once, an `unknown` one at most once, nothing else.
    reached = deliveries(telegram=telegram, slack=slack)
    assert set(reached) <= set(expected.values()), f"seed {seed}: pages nobody recorded reached a provider"
    twice = {k: reached[v] for k, v in expected.items() if reached[v] > 1}
    assert not twice, f"seed {seed}: sent more than once: {twice}"
    missing = [k for k, v in expected.items() if pages[k] == "sent" and reached[v] != 1]
    assert not missing, f"seed {seed}: recorded sent but not at the provider: {missing}"
    unknown = [k for k in expected if pages[k] == "unknown"]
    unknown_lost = [k for k in unknown if reached[expected[k]] == 0]
    notes = server.query("SELECT count(*) FROM incidents WHERE data LIKE '%may not have been delivered%'")
    assert notes[0][0] == len({k.split(":")[0] for k in unknown}), "each unknown page is on its timeline"

    print(
        f"seed {seed}: {len(payloads)} events, {KILLS} kills after "
        f"{', '.join(f'{u:.1f}' for u in uptimes)} s of uptime, attempts {dict(burst.outcomes())}; "
        f"{len(incidents)} incidents, {len(pages)} pages: "
        f"{sum(s == 'sent' for s in pages.values())} sent exactly once, {len(unknown)} unknown "
        f"({len(unknown) - len(unknown_lost)} of them reached the provider, {len(unknown_lost)} did not); "
        f"{len(telegram.succeeded('sendMessage'))} Telegram and {len(slack.succeeded('chat.postMessage'))}"
        f" Slack messages; {elapsed:.0f} s"
    )
