"""A real `oncall serve` and raw sockets: a body sent a byte a second is cut off with a 408 (and
the connection closed) a few seconds after its headers, on the webhook fast path and on every
other route, and hundreds of such clients at once do not stop the server answering.

Every wait is bounded; the only times asserted are generous "cut off before N seconds" bounds.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import select
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.live import Server
from tests.test_serve import SECRETS

pytestmark = pytest.mark.slow

BOUND = 40.0  # seconds any one wait below may take, however loaded the machine


def open_slow(port: int, path: str, length: int = 1000) -> socket.socket:
    """A POST whose headers promise `length` bytes, of which only the first is sent."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n{{"
    )
    s.sendall(head.encode())
    s.setblocking(False)
    return s


def dribble(socks: list[socket.socket], bound: float = BOUND) -> dict[socket.socket, tuple[bytes, float]]:
    """Sends each socket one more byte a second until the server answers and closes it; what
    each received and after how many seconds. Sockets still open after `bound` are left out."""
    start = time.monotonic()
    received = {s: b"" for s in socks}
    done: dict[socket.socket, tuple[bytes, float]] = {}
    next_byte = start + 1
    while len(done) < len(socks) and time.monotonic() < start + bound:
        pending = [s for s in socks if s not in done]
        readable, _, _ = select.select(pending, [], [], 0.2)
        for s in readable:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                received[s] += chunk
            else:  # the server closed the connection
                done[s] = (received[s], time.monotonic() - start)
        if time.monotonic() >= next_byte:
            next_byte += 1
            for s in pending:
                if s not in done:
                    with contextlib.suppress(BlockingIOError, BrokenPipeError, ConnectionResetError):
                        s.send(b" ")
    for s in socks:
        s.close()
    return done


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def test_a_body_sent_a_byte_a_second_is_cut_off_with_a_408_on_every_route(tmp_path: Path) -> None:
    paths = ["/webhooks/generic", "/webhooks/stripe", "/telegram/webhook", "/slack/commands", "/twilio/sms"]
    with Server(tmp_path, env=SECRETS | {"ONCALL_BODY_TIMEOUT": "3"}) as server:
        port = server.port
        socks = [open_slow(port, path) for path in paths]
        answers = dribble(socks)
        assert len(answers) == len(paths), "some slow bodies were never cut off"
        for path, s in zip(paths, socks, strict=True):
            raw, seconds = answers[s]
            status, headers, body = parse(raw)
            assert status == 408, (path, raw)
            assert headers["content-type"] == "application/json" and headers["connection"] == "close"
            assert "did not arrive within 3 seconds" in json.loads(body)["error"]
            assert 1 < seconds < 20, (path, seconds)  # waited for the body, and not forever

        # A body that streams in within the limit is read as usual.
        body = json.dumps({"kind": "checkout_error", "id": "slow-but-in-time"}).encode()
        sig = hmac.new(SECRETS["ONCALL_GENERIC_SECRET"].encode(), body, hashlib.sha256).hexdigest()
        with socket.create_connection(("127.0.0.1", port), timeout=BOUND) as s:
            s.sendall(
                f"POST /webhooks/generic HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"X-Oncall-Signature: sha256={sig}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            for i in range(0, len(body), 20):
                s.sendall(body[i : i + 20])
                time.sleep(0.05)
            raw = b""
            while chunk := s.recv(65536):
                raw += chunk
        status, _, answer = parse(raw)
        assert status == 202, raw
        assert json.loads(answer)["status"] == "accepted"

        # A client that leaves half-way through its body is one line in the log, no traceback.
        for path in paths:
            with open_slow(port, path):
                pass
        deadline = time.monotonic() + BOUND
        log = ""
        while log.count("client went away") < len(paths) - 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # the two webhook paths log their own "disconnected" line instead
            log = server.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log
    assert log.count("client went away before sending the whole body") == len(paths) - 2, log


def test_two_hundred_slow_bodies_at_once_leave_the_server_answering(tmp_path: Path) -> None:
    with Server(tmp_path, env=SECRETS) as server:  # the default time-out: 10 s
        port = server.port
        socks = [open_slow(port, "/webhooks/generic" if i % 2 else "/slack/actions") for i in range(200)]
        try:
            for _ in range(3):  # while all 200 are held open
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
                assert health.status_code == 200
            answers = dribble(socks)
        finally:
            for s in socks:
                s.close()
        assert len(answers) == 200, f"only {len(answers)} of 200 slow bodies were cut off"
        statuses = {parse(raw)[0] for raw, _ in answers.values()}
        assert statuses == {408}
        assert max(seconds for _, seconds in answers.values()) < BOUND
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
