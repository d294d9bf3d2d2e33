"""Local fake servers of the provider APIs the paging channels speak to.

Each fake is a real HTTP server on 127.0.0.1 (an ephemeral port, its own thread), so the
official SDKs talk to it over the network exactly as they talk to the real service. A fake
records every call and can be told to misbehave: answer 500, answer 429 with a retry-after,
or hang until the test ends. Faults are consumed one per matching call, in order; `down`
makes every call fail until it is cleared. `succeeded()` lists the calls the fake carried out
(answered 2xx and not refused in the body), which is what "delivered" means at the provider.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, urlsplit

FaultKind = Literal["500", "429", "hang"]


@dataclass(frozen=True)
class Call:
    """One request as the fake received it."""

    method: str
    path: str  # the API method part: "sendMessage", "chat.postMessage", "Messages.json"
    params: dict[str, Any]
    headers: dict[str, str]
    at: float  # by the fake's clock (the test's virtual clock when it injects one)


@dataclass
class Fault:
    kind: FaultKind
    retry_after: float = 1.0
    only: str | None = None  # API method it applies to; None = any


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class FakeServer:
    """Base of the fakes: subclasses implement `answer()` and the fault bodies."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.calls: list[Call] = []
        self.done: list[Call] = []  # calls carried out: 2xx, and `ok` unless the body says false
        self.faults: deque[Fault] = deque()
        self.down: FaultKind | None = None
        self._lock = threading.Lock()
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stall

            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            # A provider's front end takes every connection; the stdlib's backlog of 5 drops
            # SYNs when a restarted oncall opens twenty at once, adding 1 s retransmits.
            request_queue_size = 128

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # let hanging handlers finish
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- what the tests use ------------------------------------------------------------------

    def fail(
        self, kind: FaultKind, times: int = 1, retry_after: float = 1.0, only: str | None = None
    ) -> None:
        with self._lock:
            for _ in range(times):
                self.faults.append(Fault(kind, retry_after, only))

    def called(self, path: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.path == path]

    def succeeded(self, path: str) -> list[Call]:
        with self._lock:
            return [c for c in self.done if c.path == path]

    # -- for subclasses ----------------------------------------------------------------------

    def method_of(self, path: str) -> str:
        return path.rsplit("/", 1)[-1]

    def answer(self, call: Call) -> Reply:
        raise NotImplementedError

    def error(self, call: Call, kind: FaultKind, retry_after: float) -> Reply:
        raise NotImplementedError

    # -- the HTTP side -----------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        try:
            raw = h.rfile.read(length) if length else b""
        except ConnectionError:
            return  # the client went away mid-request (killed): nothing was asked of the provider
        if len(raw) < length:
            return  # the client went away mid-request (killed): nothing was asked of the provider
        parts = urlsplit(h.path)
        params: dict[str, Any] = dict(parse_qsl(parts.query))
        params.update(_parse_body(h.headers.get("Content-Type", ""), raw))
        call = Call(
            method=h.command,
            path=self.method_of(parts.path),
            params=params,
            headers={k.lower(): v for k, v in h.headers.items()},
            at=self.clock(),
        )
        with self._lock:
            self.calls.append(call)
            fault = self._take_fault(call.path)
            reply = self.error(call, fault.kind, fault.retry_after) if fault else self.answer(call)
            refused = isinstance(reply.body, dict) and reply.body.get("ok") is False
            if fault is None and reply.status < 300 and not refused:
                self.done.append(call)
        if fault and fault.kind == "hang":
            self._release.wait()
            return
        body = json.dumps(reply.body).encode()
        # A caller killed after asking does not hear the answer; what it asked was done all the same.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            h.send_response(reply.status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            for k, v in reply.headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(body)

    def _take_fault(self, path: str) -> Fault | None:
        if self.down is not None:
            return Fault(self.down)
        for fault in self.faults:
            if fault.only is None or fault.only == path:
                self.faults.remove(fault)
                return fault
        return None


def _parse_body(content_type: str, raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    if content_type.startswith("application/json"):
        value = json.loads(raw)
        return value if isinstance(value, dict) else {"_json": value}
    if content_type.startswith("multipart/form-data"):
        msg = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
        )
        out: dict[str, Any] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                out[name] = payload.decode()
        return out
    return dict(parse_qsl(raw.decode(), keep_blank_values=True))
