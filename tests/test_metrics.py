"""`GET /metrics` on the real app with a real store, read the way Prometheus reads it: counts of
webhooks, events, pages, acks and reassurances, incidents by state, timers, a failed edit."""

from __future__ import annotations

import asyncio
import platform
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from oncall import __version__
from oncall.metrics import METRICS
from oncall.scheduler import Scheduler
from oncall.service import Service
from oncall.settings import Settings
from oncall.store.database import open_database
from tests.recording import PEOPLE, RecordingChannel, event, madrid, shop_config
from tests.test_status_page import (
    RULES,
    STRIPE,
    TOKEN,
    paged_incident,
    post_stripe,
    running,
    stripe_failure,
    write_shop,
)

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a text exposition; fails on a line Prometheus would not read."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = _SAMPLE.match(line)
        assert m is not None, f"not a sample line: {line!r}"
        labels = frozenset(_LABEL.findall(m.group(2) or ""))
        key = (m.group(1), labels)
        assert key not in samples, f"sample twice: {line!r}"
        samples[key] = float(m.group(3))
    return samples


class Scrape:
    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = parse(text)

    def __call__(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        assert key in self.samples, f"{name}{labels} not exposed"
        return self.samples[key]


async def scrape(client: httpx.AsyncClient) -> Scrape:
    r = await client.get("/metrics")  # no credentials: Prometheus scrapes it as it is
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape(r.text)


@pytest.fixture(autouse=True)
def fresh_counters() -> Iterator[None]:
    METRICS.reset()
    yield
    METRICS.reset()


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    write_shop(tmp_path)
    async with running(tmp_path, generic_secret="generic-secret") as pair:
        yield pair


async def test_webhooks_are_counted_by_source_and_outcome(shop: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = shop
    before = await scrape(client)
    assert before("oncall_webhooks_total", source="stripe", outcome="accepted") == 0  # there from the start

    first, second = stripe_failure("evt_m_1"), stripe_failure("evt_m_2", email="pedro@example.com")
    assert (await post_stripe(client, first)).status_code == 202
    assert (await post_stripe(client, second)).status_code == 202
    assert (await post_stripe(client, first)).status_code == 200  # the platform retried
    assert (await post_stripe(client, stripe_failure("evt_m_3"), secret="whsec_forged")).status_code == 401
    big = b'{"id": "evt_big", "pad": "' + b"x" * (1024 * 1024) + b'"}'
    assert (await post_stripe(client, big)).status_code == 413
    assert (await post_stripe(client, b"{not json")).status_code == 400
    shopify = await client.post(
        "/webhooks/shopify", content=b"{}", headers={"X-Shopify-Topic": "orders/create"}
    )
    assert shopify.status_code == 401

    m = await scrape(client)
    assert m("oncall_webhooks_total", source="stripe", outcome="accepted") == 2
    assert m("oncall_webhooks_total", source="stripe", outcome="duplicate") == 1
    assert m("oncall_webhooks_total", source="stripe", outcome="unauthorized") == 1
    assert m("oncall_webhooks_total", source="stripe", outcome="too_large") == 1
    assert m("oncall_webhooks_total", source="stripe", outcome="bad_request") == 1
    assert m("oncall_webhooks_total", source="stripe", outcome="unavailable") == 0
    assert m("oncall_webhooks_total", source="shopify", outcome="unauthorized") == 1
    assert m("oncall_events_total", source="stripe", kind="payment_failed") == 2
    # Secrets never appear (SPEC §3), nor anything from a payload.
    for secret in (STRIPE, TOKEN, "generic-secret", "lucia", "pedro", "1042"):
        assert secret not in m.text.lower()


async def test_pages_acks_reassurances_incidents_and_timers(shop: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = shop
    assert (await post_stripe(client, stripe_failure("evt_p_1"))).status_code == 202
    incident = await paged_incident(app)
    m = await scrape(client)
    assert m("oncall_incidents", state="triggered") == 1 and m("oncall_incidents", state="resolved") == 0
    assert m("oncall_timer_queue_depth") == 1  # step 1's ack_within
    assert m("oncall_timers_overdue") == 0
    # Telegram has no credentials here: the page went to the console (the log).
    deadline = time.monotonic() + 10
    while (
        m.samples.get(("oncall_pages_total", frozenset({("channel", "console"), ("outcome", "sent")}))) != 1
    ):
        assert time.monotonic() < deadline, "the page was not counted"
        await asyncio.sleep(0.05)
        m = await scrape(client)
    # No SMTP, no helpdesk, no Twilio: the customer could not be reassured, and that is counted.
    assert m("oncall_reassurances_total", channel="none", outcome="unreachable") == 1

    ack = await client.post(f"/api/incidents/{incident.id}/ack", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ack.status_code == 200
    again = await client.post(
        f"/api/incidents/{incident.id}/ack", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert again.status_code == 409  # changed nothing: not counted
    m = await scrape(client)
    assert m("oncall_actions_total", action="ack", via="api") == 1
    assert m("oncall_incidents", state="acknowledged") == 1 and m("oncall_incidents", state="triggered") == 0
    assert m("oncall_scheduler_healthy") == 1 and m("oncall_store_up") == 1
    assert m("oncall_build_info", version=__version__, python=platform.python_version()) == 1


async def test_timer_lateness_is_a_histogram(shop: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = shop
    assert (await post_stripe(client, stripe_failure("evt_l_1"))).status_code == 202
    incident = await paged_incident(app)
    created = incident.created_at
    # Step 1's ack_within (10m) ran out; the scheduler runs that timer 3 seconds late.
    await app.state.service.fire_due(created + timedelta(minutes=10, seconds=3))
    m = await scrape(client)
    name = "oncall_scheduler_lateness_seconds"
    assert m(f"{name}_count") == 1
    assert m(f"{name}_bucket", le="1") == 0 and m(f"{name}_bucket", le="5") == 1
    assert m(f"{name}_bucket", le="+Inf") == 1
    assert 2.5 < m(f"{name}_sum") < 4


async def test_a_failed_edit_is_counted_and_the_config_gauge_drops(
    shop: tuple[FastAPI, httpx.AsyncClient], tmp_path: Path
) -> None:
    _, client = shop
    m = await scrape(client)
    assert m("oncall_config_ok") == 1 and m("oncall_config_reload_failures_total") == 0
    (tmp_path / "escalation_rules.toml").write_text(RULES.replace('"night"', '"nigth"', 1), encoding="utf-8")
    deadline = time.monotonic() + 15
    while m("oncall_config_reload_failures_total") == 0:
        assert time.monotonic() < deadline, "the failed edit was never counted"
        await asyncio.sleep(0.2)
        m = await scrape(client)
    assert m("oncall_config_reload_failures_total") == 1 and m("oncall_config_ok") == 0


def test_label_values_are_escaped() -> None:
    METRICS.webhook('we"ird\\\nsource', "accepted", 'kind"')
    text = "\n".join(METRICS.render(["stripe"]))
    parse(text)  # still one well-formed sample a line
    assert 'source="we\\"ird\\\\\\nsource"' in text


async def test_a_page_dropped_because_of_an_ack_counts_as_cancelled_not_failed(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'oncall.db'}")
    await asyncio.to_thread(db.migrate)
    channels = {n: RecordingChannel(n) for n in ("telegram", "slack", "sms")}
    config = shop_config()
    settings = Settings(public_url="https://oncall.example", _env_file=None)  # type: ignore[call-arg]
    service = Service(db, lambda: config, channels, settings, bundle_window=0.0)
    try:
        await db.store_event(event(at=madrid("2026-11-28 23:10"), customer="Lucia"), b"{}")
        await Scheduler(service, clock=lambda: madrid("2026-11-28 23:10")).run_once()
        await service.fire_due(madrid("2026-11-28 23:15"))  # the hold ends: step 1 recorded, not sent yet
        assert (await service.act(1, PEOPLE["ana"], "ack", "api", madrid("2026-11-28 23:15"))).ok
        await Scheduler(service, clock=lambda: madrid("2026-11-28 23:16")).run_once()
        await service.drain()
        assert not channels["telegram"].sent and not channels["slack"].sent
        pages = {k: n for k, n in METRICS.pages.items() if n}
        assert pages == {("telegram", "cancelled"): 1, ("slack", "cancelled"): 1}
        text = "\n".join(METRICS.render(["stripe"]))
        assert 'oncall_pages_total{channel="telegram",outcome="cancelled"} 1' in text
        assert 'outcome="failed"' not in text
    finally:
        await service.aclose()
        await db.aclose()
