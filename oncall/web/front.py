"""An intake worker process: the public port's requests, with webhooks handled right here.

`oncall serve` starts these (`oncall.web.workers`) beside the main process on a machine with
more than one core. Each takes connections from the listening socket the main process opened
and passes to it, and:

- `POST /webhooks/{source}`: checks, verifies and normalises the delivery as one process
  would (`WebhookIntake`), has the main process store it (`storelink`), then answers;
- every other request (status page, API, ack links, Telegram, Slack and Twilio callbacks,
  health, metrics): passed unchanged to the main process's own app over a Unix socket, and its
  answer passed back.

The main process is the only one with the database, the scheduler and the channels. A worker
keeps nothing: if it dies, the main process starts another; if the main process dies, the
worker is killed with it (`PR_SET_PDEATHSIG`) and exits when its link closes, so nothing is
left listening on the port.

    python -m oncall.web.front --fd N --run-dir DIR
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any, cast

import h11
from starlette.types import Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from oncall import logredact
from oncall.clock import system_clock
from oncall.core.models import SOURCES as SOURCE_NAMES
from oncall.metrics import METRICS
from oncall.settings import Settings
from oncall.web.bodyguard import BodyGuard, BodyRefused
from oncall.web.storelink import RemoteStore
from oncall.web.webhooks import WebhookIntake

log = logging.getLogger("oncall.workers")

APP_SOCKET = "app.sock"  # the main process's app, for everything but webhooks
STORE_SOCKET = "store.sock"  # the main process's store link

# Headers that belong to one connection, not to the request (RFC 9110 §7.6.1), and the ones
# the worker sets itself for the main process.
_HOP = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade",
     b"content-length", b"x-forwarded-for", b"x-forwarded-proto", b"forwarded")
)  # fmt: skip
_HOP_BACK = frozenset((b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"trailer"))
_JSON = [(b"content-type", b"application/json")]
PROXY_TIMEOUT = 60.0  # seconds: the slowest page of the app (an API page, a Slack interaction)


class Proxy:
    """Passes a request to the main process's app over its Unix socket, and the answer back.

    One connection per request, spoken with h11 (uvicorn's own HTTP/1.1 library): these are
    the few requests that are not webhooks, and an HTTP client library would double the
    worker's memory for them."""

    def __init__(self, app_socket: str) -> None:
        self.app_socket = app_socket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":  # nobody to answer; as `OncallApp` says it
                method, path = scope["method"], scope["path"]
                log.info("client went away before sending the whole body: %s %r", method, path)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP]
        if not any(k.lower() == b"host" for k, _ in headers):
            headers.append((b"host", b"oncall"))  # HTTP/1.1 wants one; an HTTP/1.0 client sent none
        client = scope.get("client")
        if client:
            headers.append((b"x-forwarded-for", client[0].encode("latin-1")))
        headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode("latin-1")))
        headers.append((b"content-length", str(len(body)).encode()))
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        started = False
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(PROXY_TIMEOUT):
                reader, writer = await asyncio.open_unix_connection(self.app_socket)
                conn = h11.Connection(h11.CLIENT)
                request = h11.Request(method=scope["method"], target=target, headers=headers)
                writer.write(
                    conn.send(request) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
                )
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(await reader.read(65536))
                    elif isinstance(event, h11.Response):
                        back = [(k, v) for k, v in event.headers if k not in _HOP_BACK]
                        await send(
                            {"type": "http.response.start", "status": event.status_code, "headers": back}
                        )
                        started = True
                    elif isinstance(event, h11.Data):
                        await send(
                            {"type": "http.response.body", "body": bytes(event.data), "more_body": True}
                        )
                    elif isinstance(event, h11.EndOfMessage):
                        await send({"type": "http.response.body", "body": b""})
                        return
                    elif isinstance(event, h11.ConnectionClosed):
                        raise ConnectionError("the main process closed the connection mid-answer")
        except (OSError, TimeoutError, h11.ProtocolError) as exc:
            log.warning("%s %s: the main process did not answer: %s", scope["method"], scope["path"], exc)
            if not started:
                await _answer(send, 503, b'{"error":"the server is restarting; retry later"}')
            else:  # the answer is cut: the client sees the connection end
                raise
        finally:
            if writer is not None:
                writer.close()


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FrontApp:
    """The worker's ASGI app."""

    def __init__(self, settings: Settings, run_dir: str) -> None:
        self.run_dir = run_dir
        self.body_timeout, self.max_body_bytes = settings.body_timeout, settings.max_body_bytes
        self.store = RemoteStore(on_lost=_main_gone)
        intake = WebhookIntake(settings, self.store, lambda: None, system_clock)
        self.endpoints: dict[str, Callable[..., Awaitable[None]]] = {
            f"/webhooks/{source}": intake.endpoint(source) for source in SOURCE_NAMES
        }
        self.proxy = Proxy(os.path.join(run_dir, APP_SOCKET))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # the app has no websockets
            return
        guard = BodyGuard(receive, send, self.body_timeout, self.max_body_bytes)
        try:
            endpoint = self.endpoints.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, guard.receive, guard.send)
            else:
                await self.proxy(scope, guard.receive, guard.send)
        except BodyRefused as refused:
            await guard.refuse(refused)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.store.connect(os.path.join(self.run_dir, STORE_SOCKET))
                except OSError as exc:
                    await send({"type": "lifespan.startup.failed", "message": f"no store link: {exc}"})
                    return
                METRICS.sink = self.store.count
                # What start-up built lasts as long as the process: out of the collector's
                # sight, a full collection during a flood scans only what came later.
                gc.collect()
                gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


class _GatheredTransport:
    """A connection's transport on which an answer's head and body leave in one `send`.

    uvicorn writes an answer's status line and headers, then its body, as two writes: two
    system calls and, on loopback, two segments the client reads apart. Here the head waits
    for what comes next: the body, written with it at once (a webhook's 202: one of each),
    or the end of the loop turn (an answer that streams). Everything else is the real
    transport's."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        head = self._head
        if head is None:
            self._head = bytes(data)
            asyncio.get_running_loop().call_soon(self._flush)
            return
        self._head = None
        if not self._transport.is_closing():
            self._transport.write(head + bytes(data))

    def _flush(self) -> None:
        head, self._head = self._head, None
        if head is not None and not self._transport.is_closing():
            self._transport.write(head)

    def close(self) -> None:
        self._flush()  # what was written goes before the close, as on the real transport
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _GatheringHttp(HttpToolsProtocol):
    """uvicorn's own HTTP/1.1 protocol (httptools), writing through `_GatheredTransport`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        gathered = _GatheredTransport(cast(asyncio.Transport, transport))
        super().connection_made(cast(asyncio.Transport, gathered))


def _main_gone() -> None:
    """The store link closed: the main process is stopping or gone. Stop taking requests."""
    os.kill(os.getpid(), signal.SIGTERM)


def _die_with_parent() -> None:
    """Linux: SIGKILL when the main process dies, even by SIGKILL (nothing left on the port)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from oncall.web.quietserver import QuietServer

    parser = argparse.ArgumentParser(prog="python -m oncall.web.front")
    parser.add_argument("--fd", type=int, required=True, help="the listening socket, inherited")
    parser.add_argument("--run-dir", required=True, help="where the main process's sockets are")
    parser.add_argument("--parent", type=int, default=0, help="the main process's pid")
    args = parser.parse_args(argv)
    _die_with_parent()
    if args.parent and os.getppid() != args.parent:
        return 0  # the main process died before we could follow it
    settings = Settings()
    logredact.configure(settings)
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    sock = socket.socket(fileno=args.fd)
    config = uvicorn.Config(
        FrontApp(settings, args.run_dir),
        log_config=None,
        access_log=False,
        loop="auto",
        http=_GatheringHttp,
        proxy_headers=True,  # a reverse proxy in front (Heroku's router): its X-Forwarded-For
        timeout_graceful_shutdown=10,
        lifespan="on",
    )
    server = QuietServer(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
