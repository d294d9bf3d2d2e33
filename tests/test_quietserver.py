"""`oncall serve`'s uvicorn server sleeps while nobody is connected (uvicorn's own loop wakes
ten times a second for ever), yet answers at once with a current `Date` and stops on a signal."""

from __future__ import annotations

import signal
import socket
import threading
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import uvicorn

from oncall.web.quietserver import QuietServer


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def start_quiet() -> tuple[QuietServer, threading.Thread, int]:
    """A `QuietServer` for `app` on a free port, running in a thread of its own."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    server = QuietServer(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return server, thread, port


def test_an_idle_server_sleeps_answers_with_a_fresh_date_and_stops_on_a_signal() -> None:
    server, thread, port = start_quiet()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started
    for _ in range(2):  # each on a connection of its own: the server is idle in between
        answer = httpx.get(f"http://127.0.0.1:{port}/", headers={"Connection": "close"}, timeout=10)
        assert answer.text == "ok"
        assert parsedate_to_datetime(answer.headers["date"]).year >= 2024
    time.sleep(0.3)  # the last connection's tick ends; the loop goes to sleep
    sleeps = server.idle_sleeps
    time.sleep(0.5)  # uvicorn's loop would have woken five times meanwhile
    assert server.idle_sleeps == sleeps
    server.handle_exit(signal.SIGTERM, None)  # what the signal handler calls
    thread.join(timeout=15)
    assert not thread.is_alive()


def test_an_idle_server_stops_at_once_when_told_to_by_hand() -> None:
    """Setting `should_exit` (as uvicorn does on a failed lifespan, or an embedding program
    does) wakes the idle loop: it does not wait for a bound on its sleep."""
    server, thread, _port = start_quiet()
    for _ in range(200):
        if server.started and server.idle_sleeps:
            break
        time.sleep(0.05)
    assert server.started and server.idle_sleeps
    server.should_exit = True  # from another thread than the server's loop
    thread.join(timeout=15)  # far below the idle bound (an hour)
    assert not thread.is_alive()
