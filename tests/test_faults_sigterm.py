"""SIGTERM while a webhook is being received: the request is finished (202, stored), the
process stops cleanly, and no timer is lost (held incidents page after the restart).

A real `oncall serve` (SQLite, real clock, Telegram through the fake) holds an incident; a
second delivery is on its way, half its body sent, when SIGTERM arrives; the rest of the body
follows half a second later.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from oncall.sources import generic
from tests.fakes.telegram import FakeTelegram
from tests.live import SECRET, Server, channel_env, deliveries, failure, paging_shop, telegram_chat, wait_for
from tests.live import write_config as write

pytestmark = [pytest.mark.fault, pytest.mark.slow]

HOLD = "6s"  # longer than the stop takes, so both timers are still waiting when it ends


def test_sigterm_during_a_webhook_finishes_it_and_loses_no_timer(
    tmp_path: Path, telegram: FakeTelegram
) -> None:
    rules, rotas = paging_shop(2, [("telegram", "10m")], hold=HOLD)
    write(tmp_path, rules, rotas)
    server = Server(tmp_path, env=channel_env(telegram=telegram))
    try:
        server.start()
        first = server.post(failure(1, "o1", "held-before"))
        assert first.status_code == 202, first.text

        body = json.dumps(failure(2, "o2", "in-flight")).encode()
        head = [
            "POST /webhooks/generic HTTP/1.1",
            f"Host: 127.0.0.1:{server.port}",
            f"Content-Length: {len(body)}",
            "Connection: close",
            *(f"{k}: {v}" for k, v in generic.sign(body, SECRET, datetime.now(UTC)).items()),
        ]
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as conn:
            conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body[:20])
            time.sleep(0.3)  # the server has read the headers: the request is in flight
            assert server.proc is not None
            proc = server.proc
            proc.terminate()
            time.sleep(0.5)
            assert proc.poll() is None, "the server stopped with a request in flight"
            conn.sendall(body[20:])
            answer = _read_all(conn)
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line.split()[1] == b"202", answer
        event_id = json.loads(rest.partition(b"\r\n\r\n")[2])["event_id"]
        # A graceful stop: uvicorn re-raises the signal once it is done, as init systems expect.
        assert proc.wait(20) in (0, -signal.SIGTERM), server.tail()
        assert "Application shutdown complete" in server.tail()
        server.proc = None
        assert telegram.sent() == []  # stopped during both holds: nobody paged yet
        assert server.query("SELECT id FROM events WHERE dedup_key = 'in-flight'") == [(event_id,)]

        server.start()
        both = {(1, "telegram", telegram_chat(1)), (2, "telegram", telegram_chat(2))}
        assert wait_for(lambda: set(deliveries(telegram=telegram)) == both, 30), server.tail()
        time.sleep(0.5)  # anything that would page a second time has had its chance
        assert deliveries(telegram=telegram) == dict.fromkeys(both, 1)
        assert sorted(s for _, s, _ in server.pages()) == ["sent", "sent"]
    finally:
        server.stop()


def _read_all(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)
