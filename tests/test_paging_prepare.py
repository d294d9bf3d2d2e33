"""What a channel does before it delivers (Slack: finding the person's DM channel) happens
before the page is marked `sending`, so a crash then leaves the page to be sent after the
restart instead of marked `unknown` and never sent (the at-most-once window is the delivering
call alone). Real SlackChannel against the fake Slack, whose `conversations.open` hangs once.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from oncall.channels.slack import SlackChannel
from oncall.scheduler import Scheduler
from oncall.service import Service
from oncall.settings import Settings
from oncall.store.database import open_database
from tests.fakes.slack import FakeSlack
from tests.recording import RecordingChannel, event, madrid, shop_config


def slack_page_state(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        [(state,)] = conn.execute("SELECT state FROM pages WHERE channel = 'slack'").fetchall()
    finally:
        conn.close()
    return str(state)


async def test_the_slack_dm_lookup_runs_before_the_page_is_marked_sending(tmp_path: Path) -> None:
    fake = FakeSlack().start()
    db = open_database(f"sqlite:///{tmp_path / 'oncall.db'}")
    service: Service | None = None
    try:
        await asyncio.to_thread(db.migrate)
        fake.fail("hang", only="conversations.open")
        slack = SlackChannel("xoxb-test", fake.api_url, timeout=1.0)
        config = shop_config()
        service = Service(
            db,
            lambda: config,
            {"slack": slack, "telegram": RecordingChannel("telegram"), "sms": RecordingChannel("sms")},
            Settings(public_url="https://oncall.example", _env_file=None),  # type: ignore[call-arg]
            bundle_window=0.0,
        )
        await db.store_event(event(at=madrid("2026-11-28 23:10")), b"{}")
        await Scheduler(service, clock=lambda: madrid("2026-11-28 23:10")).run_once()
        await Scheduler(service, clock=lambda: madrid("2026-11-28 23:15")).run_once()  # the hold ends
        for _ in range(200):  # the page's send is under way in the background
            if fake.called("conversations.open"):
                break
            await asyncio.sleep(0.01)
        assert fake.called("conversations.open") and fake.succeeded("chat.postMessage") == []
        assert slack_page_state(tmp_path / "oncall.db") == "queued"  # a crash now: sent after restart
        await service.drain()
        assert slack_page_state(tmp_path / "oncall.db") == "sent"  # the send looked the DM up again
        assert len(fake.succeeded("chat.postMessage")) == 1
    finally:
        if service is not None:
            await service.aclose()
        await db.aclose()
        fake.stop()
