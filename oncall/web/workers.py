"""`oncall serve` on several cores: intake worker processes in front of the main process.

One Python process runs on one core at a time. During a flood of webhooks, checking each
signature, reading its JSON and answering it cost as much as storing and routing it, so with
workers (`ONCALL_WORKERS`, `oncall serve --workers N`; by default one fewer than the cores,
at most 4, none on one core) the main process:

1. opens the public port itself (a clear error if it is taken) and never accepts on it;
2. serves its whole app on a Unix socket in a private directory, plus the store link
   (`oncall.web.storelink`), and keeps the database, the scheduler and the channels;
3. starts the workers (`oncall.web.front`), which all accept on the public port, and starts
   another when one dies (after a pause that grows while they keep dying);
4. on SIGTERM or Ctrl-C, stops the workers first, so the requests they are answering still
   reach the store, then itself.

Nothing else changes: the answers, the store, the log lines and /metrics are the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from oncall.web.front import APP_SOCKET, STORE_SOCKET
from oncall.web.quietserver import QuietServer
from oncall.web.storelink import LinkServer
from oncall.web.webhooks import WebhookIntake

log = logging.getLogger("oncall.workers")

STOP_WITHIN = 15.0  # seconds a worker has to finish its requests (uvicorn's grace is 10)
RESTART_PAUSES = (1.0, 2.0, 5.0, 10.0, 30.0)  # after a worker died, by how many died in a row


MAX_DEFAULT = 4  # each worker is a Python process of its own (~40 MB): a big host is not a big box


def default_count(cpus: int | None = None) -> int:
    """Workers when none is set: every core but the main process's, up to `MAX_DEFAULT`;
    none on one core. The cores are those this process may run on (a container's cpuset)."""
    n = cpus if cpus is not None else len(os.sched_getaffinity(0))
    return min(MAX_DEFAULT, max(0, n - 1))


def listen(host: str, port: int) -> socket.socket:
    """The public port, bound and listening, inheritable by the workers."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class Pool:
    """The worker processes: started, restarted when one dies, stopped."""

    def __init__(self, count: int, fd: int, run_dir: str) -> None:
        self.count, self.fd, self.run_dir = count, fd, run_dir
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for slot in range(self.count):
            self._tasks.append(asyncio.create_task(self._keep(slot)))

    async def _spawn(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "oncall.web.front",
            "--fd", str(self.fd), "--run-dir", self.run_dir, "--parent", str(os.getpid()),
            pass_fds=(self.fd,),
        )  # fmt: skip

    async def _keep(self, slot: int) -> None:
        deaths = 0
        while not self.stopping:
            proc = await self._spawn()
            self.procs[slot] = proc
            log.info("intake worker %d started (pid %d)", slot + 1, proc.pid)
            code = await proc.wait()
            if self.stopping:
                return
            pause = RESTART_PAUSES[min(deaths, len(RESTART_PAUSES) - 1)]
            deaths += 1
            log.error(
                "intake worker %d (pid %d) exited %s; another starts in %gs", slot + 1, proc.pid, code, pause
            )
            await asyncio.sleep(pause)

    def alive(self) -> int:
        return sum(1 for p in self.procs.values() if p.returncode is None)

    async def stop(self) -> None:
        """SIGTERM to every worker, and SIGKILL for any still there after `STOP_WITHIN`."""
        self.stopping = True
        running = [p for p in self.procs.values() if p.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        if running:
            waits = asyncio.gather(*(p.wait() for p in running))
            try:
                await asyncio.wait_for(asyncio.shield(waits), STOP_WITHIN)
            except TimeoutError:
                for proc in running:
                    if proc.returncode is None:
                        log.error("intake worker pid %d did not stop; killed", proc.pid)
                        with contextlib.suppress(ProcessLookupError):
                            proc.kill()
                await waits
        for task in self._tasks:
            task.cancel()


class _MainServer(QuietServer):
    """The main process's server: a stop signal stops the workers first."""

    pool: Pool | None = None
    up: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.up is not None:
            self.up.set()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        loop = self._loop
        if self.pool is None or self.pool.stopping or loop is None:
            super().handle_exit(sig, frame)
            return
        pool = self.pool

        async def stop_then_exit() -> None:
            await pool.stop()
            super(_MainServer, self).handle_exit(sig, frame)

        self.pool.stopping = True  # a second signal goes straight on
        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(stop_then_exit()))


def serve(app: FastAPI, host: str, port: int, count: int, *, proxy_headers: bool = True) -> int:
    """Runs the main process with `count` workers; the exit status of `oncall serve`."""
    try:
        sock = listen(host, port)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        log.error("oncall serve could not start: cannot listen on %s:%d: %s", host, port, reason)
        return 1
    run_dir = tempfile.mkdtemp(prefix="oncall-")  # 0700: only this user reaches the sockets
    link = LinkServer(app.state.db, lambda event_id: _wake(app, event_id))

    async def start_link(app: FastAPI) -> None:
        await link.start(os.path.join(run_dir, STORE_SOCKET))

    async def stop_link(app: FastAPI) -> None:
        await link.close()

    app.state.startup_hooks.append(start_link)
    app.state.shutdown_hooks.append(stop_link)  # run first: shutdown hooks go in reverse
    config = uvicorn.Config(
        app,
        uds=os.path.join(run_dir, APP_SOCKET),
        log_config=None,
        access_log=False,
        loop="auto",
        http="auto",
        proxy_headers=proxy_headers,
        forwarded_allow_ips="*",  # only the workers reach this socket; they set X-Forwarded-*
        timeout_graceful_shutdown=10,
    )
    server = _MainServer(config)
    pool = Pool(count, sock.fileno(), run_dir)

    async def main() -> None:
        server.up = asyncio.Event()
        serving = asyncio.create_task(server.serve())
        up = asyncio.create_task(server.up.wait())
        await asyncio.wait([serving, up], return_when=asyncio.FIRST_COMPLETED)  # start-up done, or failed
        up.cancel()
        if server.started:
            server.pool = pool
            await pool.start()
            log.info("oncall serve: listening on http://%s:%d with %d intake workers", host, port, count)
        await serving
        if not pool.stopping:
            await pool.stop()

    try:
        factory = config.get_loop_factory()
        with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main())
    finally:
        sock.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0 if server.started else 1


def _wake(app: FastAPI, event_id: int) -> None:
    """As the webhook endpoint does in one process: the router is told of a stored event."""
    hook: Any = app.state.on_event_stored
    if hook is not None:
        WebhookIntake._wake(hook, event_id)
