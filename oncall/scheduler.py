"""The scheduler inside `oncall serve`: one asyncio task that sleeps until the next due time.

    start:  interrupted pages → `unknown`; everything already due (events stored but never
            routed, holds that ended while oncall was down, steps due) runs once, at once
    loop:   route new events → fire due timers → send recorded pages
            sleep until min(next wake_at, next named timer), or until woken by
            `service.wake()` (a webhook stored, an ack) or by a change to the config files

No polling while idle: a single indexed MIN query after each round of work says how long to
sleep, and the configuration is re-checked when the kernel says its files changed (inotify,
oncall.config.notify); only where that is unavailable is it re-checked on a timer. An idle
server with nothing due thus wakes once per MAX_SLEEP. Timers are rows in the store, so a
restart loses none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from oncall.config.notify import DirNotifier, Target
from oncall.service import Service

log = logging.getLogger("oncall.scheduler")

# A bound on one sleep: it guards against a clock that jumped (suspend, NTP step) without
# making the idle loop busy.
MAX_SLEEP = 300.0
# Events routed in one round at most; a round that routed fewer found no more waiting.
ROUTE_LIMIT = 200
# How long before a timer falls due its incidents are read ahead (see `Scheduler._sleep`).
READ_AHEAD = 0.1
# How long after the last file event the files are re-read: an editor's save is a few events
# (move the old file aside, write the new one, change its mode) that one re-read covers, after
# the save rather than halfway. SETTLE_MAX bounds the wait for saves that never go quiet
# (SPEC §2.2: a change is in force within 5 s).
SETTLE = 0.25
SETTLE_MAX = 2.0


class Scheduler:
    def __init__(
        self,
        service: Service,
        *,
        clock: Callable[[], datetime] | None = None,
        on_idle: Callable[[], object] | None = None,
        idle_every: float | None = None,
        watch: Callable[[], list[Target]] | None = None,
    ) -> None:
        """`on_idle` (the config watcher's poll) returns something true when it changed
        anything (a new configuration: look again). It runs when a directory of `watch()`
        reports a change, and also every MAX_SLEEP in case the file system does not report
        them (a network mount); where there is no notification at all, or not for every
        directory, it runs about every `idle_every` seconds instead. `watch` defaults to the
        service's rules file and rotas/. `clock` defaults to the service's."""
        self.service = service
        self.clock = clock or service.clock
        self.on_idle = on_idle
        self.idle_every = idle_every
        self.watch = watch if watch is not None else _service_files(service)
        self.settle = SETTLE
        self.rounds = 0  # work rounds run: for tests and the benchmark
        self.idle_runs = 0  # times the idle hook ran: for tests
        self.healthy = False
        self._task: asyncio.Task[None] | None = None
        self._last_idle = time.monotonic()
        self._notifier: DirNotifier | None = None
        self._settling: asyncio.TimerHandle | None = None
        self._settle_from: float | None = None  # loop time of the first event not yet read

    @property
    def notified(self) -> bool:
        """Whether file changes are reported by the kernel (no re-check on a timer needed)."""
        return self._notifier is not None and self._notifier.complete

    @property
    def _poll_every(self) -> float | None:
        """How often the idle hook must run on a timer: None while notifications cover it."""
        if self.on_idle is None or self.notified:
            return None
        return self.idle_every

    async def run_once(self) -> None:
        """One round: route, fire what is due, send. Repeats while work keeps appearing.

        The routing transaction also reads the earliest due time and whether pages wait: a
        round of a flood (events keep arriving, nothing falls due) is that one transaction,
        not one more each to find no timer due and no page to send."""
        s = self.service
        while True:
            now = self.clock()
            routed, ahead = await s.route_round(now, ROUTE_LIMIT)
            fired = 0
            if ahead is None or (ahead.due is not None and ahead.due <= now):
                while True:  # every due timer before any sending: sends compete for the loop
                    n = await s.fire_due(now)
                    fired += n
                    if n < s.fire_batch:
                        break
            sent = 0
            if ahead is None or ahead.pages or fired:
                sent = await s.send_pages(now)
            self.rounds += 1
            # Fewer routed than the limit: the round found no more waiting, and one more round
            # would only read that again (events stored since then wake the scheduler).
            if routed < ROUTE_LIMIT and not (fired or sent):
                return

    async def run(self) -> None:
        wake = self.service.wake_event()
        self._start_notifier()
        recovered = False
        try:
            while True:
                wake.clear()
                try:
                    if not recovered:  # the store may be down at start: recover once it answers
                        await self.service.recover(self.clock())
                        recovered = True
                    await self.run_once()
                    self.healthy = True
                    await self._sleep(wake)  # it reads the store too (next due time, read-ahead)
                except Exception:
                    # A store outage: keep the timers (they are in the store) and try again soon.
                    self.healthy = False
                    log.exception("escalation round failed; retrying in 5 s")
                    await _sleep_or_wake(wake, 5.0)
        finally:
            self._stop_notifier()

    # -- file-change notification ------------------------------------------------------------

    def _start_notifier(self) -> None:
        if self.on_idle is None or self.watch is None or self._notifier is not None:
            return
        notifier = DirNotifier.open(self.watch)
        if notifier is None:
            return
        self._notifier = notifier
        asyncio.get_running_loop().add_reader(notifier.fileno(), self._on_file_event)
        # The files may have changed between the hook's first run and the watches being set.
        if self._run_idle():
            self.service.wake()

    def _stop_notifier(self) -> None:
        if self._settling is not None:
            self._settling.cancel()
            self._settling = None
        notifier, self._notifier = self._notifier, None
        if notifier is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(notifier.fileno())
            notifier.close()

    def _on_file_event(self) -> None:
        """The inotify descriptor is readable: re-read the files once the events stop for
        `settle` seconds (one re-read for a burst of them), or SETTLE_MAX after the first."""
        notifier = self._notifier
        if notifier is None:
            return
        try:
            relevant = notifier.drain()
        except OSError:
            log.exception("file-change notification failed; polling the configuration")
            self._stop_notifier()
            self.service.wake()  # sleep again, now with the re-check interval
            return
        if not relevant:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._settle_from is None:
            self._settle_from = now
        if self._settling is not None:
            self._settling.cancel()
        at = min(now + self.settle, self._settle_from + SETTLE_MAX)
        self._settling = loop.call_at(at, self._files_settled)

    def _files_settled(self) -> None:
        self._settling = self._settle_from = None
        notifier = self._notifier
        if notifier is None:
            return
        was_complete = notifier.complete
        notifier.rewatch()  # a swapped symlink points at other directories now
        changed = self._run_idle()
        if changed or notifier.complete != was_complete:
            # A new configuration (timers may move), or the re-check interval changed.
            self.service.wake()

    async def _sleep(self, wake: asyncio.Event) -> None:
        """Sleeps until the next due time or a wake-up. Without file-change notification the
        idle hook (config re-check) runs every `idle_every` seconds meanwhile without touching
        the store; a configuration change ends the sleep. Just before a timer falls due, the
        incidents due then are read ahead, so that when it comes only the escalation step
        itself is left to do."""
        if wake.is_set():  # work arrived during the round (a flood): no store read to sleep 0 s
            return
        delay, due = await self._next()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            every = self._poll_every
            span = remaining if every is None else min(remaining, every)
            if due is not None and span == remaining and span > READ_AHEAD:
                # The due time falls within this span: stop a little early to read ahead.
                if await _sleep_or_wake(wake, span - READ_AHEAD):
                    return
                await self.service.read_ahead(due)
                rest = deadline - loop.time()
                if rest > 0:
                    await _sleep_or_wake(wake, rest)
                return
            if await _sleep_or_wake(wake, span):
                return
            if self._maybe_idle():
                return

    def _maybe_idle(self) -> bool:
        """Runs the idle hook if its interval has passed; True when it reports a change."""
        if self.on_idle is None or self.idle_every is None:
            return False
        if time.monotonic() - self._last_idle < self.idle_every * 0.9:
            return False
        return self._run_idle()

    def _run_idle(self) -> bool:
        """Runs the idle hook now; True when it reports a change."""
        if self.on_idle is None:
            return False
        self._last_idle = time.monotonic()
        self.idle_runs += 1
        try:
            return bool(self.on_idle())
        except Exception:
            log.exception("idle hook failed")
            return False

    async def _next(self) -> tuple[float, datetime | None]:
        """How long to sleep, and the due time that ends the sleep (None: nothing due)."""
        if self.service.config() is None:
            # No valid configuration yet: timers cannot run, so do not spin on them; the
            # config re-check (idle hook) or a new event wakes us.
            return self._poll_every or MAX_SLEEP, None
        due = await self.service.next_due()
        if due is None:
            return MAX_SLEEP, None
        seconds = max(0.0, (due - self.clock()).total_seconds())
        if seconds > MAX_SLEEP:  # wake up to look again before then; nothing to read ahead yet
            return MAX_SLEEP, None
        return seconds, due

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name="oncall-scheduler")
        return self._task

    async def stop(self) -> None:
        await _cancel(self._task)
        self._task = None
        await self.service.aclose()


def _service_files(service: Service) -> Callable[[], list[Target]] | None:
    """The directories to watch for the service's configuration files, from its settings."""
    settings = getattr(service, "settings", None)
    rules_file = getattr(settings, "rules_file", None)
    rotas_dir = getattr(settings, "rotas_dir", None)
    if not isinstance(rules_file, Path) or not isinstance(rotas_dir, Path):
        return None
    from oncall.config.watch import watch_targets

    return lambda: watch_targets(rules_file, rotas_dir)


async def _cancel(task: asyncio.Task[None] | None) -> None:
    """Cancels a background task and waits until it has stopped."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _sleep_or_wake(wake: asyncio.Event, seconds: float) -> bool:
    """Sleeps `seconds` or until `wake` is set; True when woken."""
    if wake.is_set():
        return True
    try:
        async with asyncio.timeout(seconds):
            await wake.wait()
        return True
    except TimeoutError:
        return False


class Heartbeat:
    """Fetches ONCALL_HEARTBEAT_URL every `every` seconds while the scheduler is healthy, so an
    outside dead-man's switch notices when oncall is down or stuck (SPEC §5)."""

    def __init__(self, url: str, scheduler: Scheduler, *, every: float = 60.0, timeout: float = 10.0) -> None:
        self.url = url
        self.scheduler = scheduler
        self.every = every
        self.timeout = timeout
        self.beats = 0
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> bool:
        """One fetch, if the scheduler is healthy; True when the URL answered 2xx."""
        if not self.scheduler.healthy:
            return False
        import httpx

        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(self.url)
        except httpx.HTTPError as exc:
            log.warning("heartbeat failed: %s", type(exc).__name__)  # never the URL: it may hold a key
            return False
        if response.is_success:
            self.beats += 1
            return True
        log.warning("heartbeat answered %d", response.status_code)
        return False

    async def run(self) -> None:
        while True:
            await self.beat()
            await asyncio.sleep(self.every)

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name="oncall-heartbeat")
        return self._task

    async def stop(self) -> None:
        await _cancel(self._task)
        self._task = None
