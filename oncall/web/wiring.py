"""The escalation service, its scheduler, the configuration watcher and the heartbeat, started
and stopped with the web app (`create_app` adds `start` and `stop` to its lifespan hooks). The
service and the scheduler run on the app's clock (`app.state.clock`)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from oncall.channels.base import Channel
from oncall.metrics import METRICS
from oncall.service import Service
from oncall.settings import Settings
from oncall.web.inbound import now_of

log = logging.getLogger("oncall.api")


def build_channels(settings: Settings) -> dict[str, Channel]:
    """The paging channels; one without credentials is reported as not configured and its
    pages go to the console (log)."""
    from oncall.channels import build_channels as build

    channels = build(settings)
    off = [name for name, c in channels.items() if not c.configured()]
    if off:
        log.info("channels without credentials (pages go to the console log): %s", ", ".join(off))
    return channels


async def start(app: FastAPI) -> None:
    from oncall.scheduler import Heartbeat, Scheduler

    state = app.state
    settings = state.settings
    reassurer = None
    try:
        from oncall.reassure import Reassurer

        reassurer = Reassurer(state.db, settings, clock=lambda: now_of(app))
    except ImportError:
        log.warning("customer reassurance unavailable")
    channels = build_channels(settings)
    app_clock = lambda: now_of(app)  # noqa: E731 - read at each call: a test may set app.state.clock later
    service = Service(state.db, lambda: state.config, channels, settings, reassurer, clock=app_clock)
    state.service = service
    previous = state.on_event_stored

    def stored(event_id: int) -> None:
        service.on_event_stored(event_id)
        if previous is not None:
            previous(event_id)

    state.on_event_stored = stored
    watcher = _watcher(app, service)
    scheduler = Scheduler(service, on_idle=watcher, idle_every=2.0)
    state.scheduler = scheduler
    scheduler.start()
    if settings.heartbeat_url:
        state.heartbeat = Heartbeat(settings.heartbeat_url, scheduler)
        state.heartbeat.start()


async def stop(app: FastAPI) -> None:
    heartbeat = getattr(app.state, "heartbeat", None)
    if heartbeat is not None:
        await heartbeat.stop()
    scheduler = getattr(app.state, "scheduler", None)
    if scheduler is not None:
        await scheduler.stop()


def _watcher(app: FastAPI, service: Service) -> Any:
    """Re-reads the owner's files when they change (SPEC §2.2: in force within 5 s). A bad edit
    keeps the last good configuration; the owner is told in the log, in /readyz and by a
    message to `shop.fallback`."""
    try:
        from oncall.config.watch import ConfigWatcher
    except ImportError:
        return None
    settings = app.state.settings
    watcher = ConfigWatcher(settings.rules_file, settings.rotas_dir)
    first = [True]

    def poll() -> bool:
        """True when a new configuration came into force."""
        change = watcher.poll()
        if change is None:
            return False
        starting, first[0] = first[0], False
        if change.ok and change.config is not None:
            if not starting:
                log.info("configuration reloaded")
            app.state.config, app.state.config_error = change.config, None
            return True
        app.state.config_error = "; ".join(change.problems)
        if starting:
            return False  # the app has already logged why the files did not load
        log.error("configuration change not applied (keeping the last good one): %s", app.state.config_error)
        METRICS.config_reload_failed()
        if app.state.config is not None:
            shop = app.state.config.rules.shop.name
            head = f"{shop}: your edit was not applied; the previous configuration stays in force."
            service.notify_fallback("\n".join([head, *change.problems]))
        return False

    poll()
    return poll
