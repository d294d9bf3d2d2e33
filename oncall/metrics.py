"""The process's counters for `GET /metrics` (SPEC §4), in the Prometheus text format.

One `METRICS` object per process (like the official client's default registry). Each hook is a
plain dict increment on the thread that calls it — the webhook endpoint's is the event loop,
the scheduler's lateness the store's writer thread — so the hot path takes no lock and
allocates nothing. Values read at scrape time (incidents by state, timers, the configuration)
come from the store and the app in `oncall.web.metrics`.

Labels are only names the code chose (sources, outcomes, event kinds, channels, ways of
acting): never a secret, a customer or a payload value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

# What the webhook endpoint calls an outcome → what /metrics calls it (SPEC §4's answers).
WEBHOOK_OUTCOMES: dict[str, str] = {
    "accepted": "accepted",
    "duplicate": "duplicate",
    "bad_signature": "unauthorized",
    "bad_json": "bad_request",
    "bad_payload": "bad_request",
    "bad_content_type": "bad_request",
    "disconnected": "bad_request",
    "wrong_method": "bad_request",
    "too_large": "too_large",
    "body_timeout": "timeout",
    "store_unavailable": "unavailable",
    "store_error": "unavailable",
    "ping": "ping",
    "error": "error",
}
# Always exposed (at 0 until they happen), so `rate()` and alerts see the first one.
MAIN_OUTCOMES = ("accepted", "duplicate", "unauthorized", "bad_request", "too_large", "unavailable")
# The counters with two labels: name -> (labels, help).
COUNTERS: dict[str, tuple[tuple[str, str], str]] = {
    "oncall_webhooks_total": (("source", "outcome"), "Webhook deliveries answered, by source and outcome."),
    "oncall_events_total": (("source", "kind"), "Events newly stored, by source and kind."),
    "oncall_pages_total": (("channel", "outcome"), "Pages handed to a channel, by channel and outcome."),
    "oncall_actions_total": (("action", "via"), "Acks, resolves and snoozes that took effect, by way."),
    "oncall_reassurances_total": (("channel", "outcome"), "Customer reassurances, by channel and outcome."),
}
LATENESS_BUCKETS: tuple[float, ...] = (0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0)
# Time to acknowledge, in seconds: 1, 5, 10, 15, 30 minutes, 1 and 2 hours.
ACK_BUCKETS: tuple[float, ...] = (60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0)
PROMISE_OUTCOMES = ("kept", "broken")


class Histogram:
    """Observations counted into fixed buckets (each counts its own span, not cumulatively:
    one increment per observation), with their sum and count; `digits` rounds the sum."""

    def __init__(self, bounds: tuple[float, ...], digits: int) -> None:
        self.bounds = bounds
        self.digits = digits
        self.buckets = [0] * len(bounds)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.buckets[i] += 1
                break

    def render(self, out: list[str], name: str, help_text: str) -> None:
        family(out, name, "histogram", help_text)
        cumulative = 0
        for bound, n in zip(self.bounds, self.buckets, strict=True):
            cumulative += n
            out.append(sample(f"{name}_bucket", cumulative, le=f"{bound:g}"))
        out.append(sample(f"{name}_bucket", self.count, le="+Inf"))
        out.append(sample(f"{name}_sum", round(self.sum, self.digits)))
        out.append(sample(f"{name}_count", self.count))


class Metrics:
    def __init__(self) -> None:
        # An intake worker process (`oncall.web.front`) hands every answered webhook on to the
        # main process, whose /metrics counts them all.
        self.sink: Callable[[str, str, str | None, int], None] | None = None
        self.reset()

    def reset(self) -> None:
        """Every counter back to zero (tests)."""
        self.webhooks: dict[str, dict[str, int]] = {}  # source → endpoint outcome → n
        self.events: dict[tuple[str, str], int] = {}  # (source, kind) → n
        self.pages: dict[tuple[str, str], int] = {}  # (channel, outcome) → n
        self.actions: dict[tuple[str, str], int] = {}  # (action, via) → n
        self.reassurances: dict[tuple[str, str], int] = {}  # (channel, outcome) → n
        self.config_reload_failures = 0
        self.lateness = Histogram(LATENESS_BUCKETS, digits=6)
        self.promises: dict[str, int] = dict.fromkeys(PROMISE_OUTCOMES, 0)
        self.time_to_ack = Histogram(ACK_BUCKETS, digits=3)

    # -- hooks ----------------------------------------------------------------------------------

    def webhook(self, source: str, outcome: str, kind: str | None = None, n: int = 1) -> None:
        """`n` answered deliveries (an intake worker's of one loop turn); `kind` of events
        newly stored."""
        by = self.webhooks.get(source)
        if by is None:
            by = self.webhooks[source] = {}
        by[outcome] = by.get(outcome, 0) + n
        if outcome == "accepted" and kind is not None:
            key = (source, kind)
            self.events[key] = self.events.get(key, 0) + n
        if self.sink is not None:
            self.sink(source, outcome, kind, n)

    def page(self, channel: str, outcome: str) -> None:
        """A page handed to a channel: sent, failed, or cancelled (acknowledged meanwhile)."""
        key = (channel, outcome)
        self.pages[key] = self.pages.get(key, 0) + 1

    def act(self, action: str, via: str, ok: bool) -> None:
        """An ack, resolve or snooze that changed the incident, and the way it came."""
        if ok:
            key = (action, via)
            self.actions[key] = self.actions.get(key, 0) + 1

    def reassurance(self, channel: str | None, outcome: str) -> None:
        key = (channel or "none", outcome)
        self.reassurances[key] = self.reassurances.get(key, 0) + 1

    def promise(self, outcome: str) -> None:
        """A promise to a customer kept or broken (by this process)."""
        self.promises[outcome] = self.promises.get(outcome, 0) + 1

    def acknowledged(self, after: timedelta | None) -> None:
        """An incident's first acknowledgement, `after` its first page (None: not one)."""
        if after is None:
            return
        self.time_to_ack.observe(max(0.0, after.total_seconds()))

    def config_reload_failed(self) -> None:
        self.config_reload_failures += 1

    def timers_fired(self, now: datetime, incidents: Iterable[Any]) -> None:
        """How late each timer ran: `now` minus the incident's `wake_at`."""
        for inc in incidents:
            due: datetime | None = getattr(inc, "wake_at", None)
            if due is None:
                continue
            self.lateness.observe(max(0.0, (now - due).total_seconds()))

    # -- exposition -----------------------------------------------------------------------------

    def render(self, sources: Sequence[str]) -> list[str]:
        """The counters as exposition lines (without the scrape-time gauges)."""
        out: list[str] = []
        webhooks: dict[tuple[str, str], int] = {(s, o): 0 for s in sources for o in MAIN_OUTCOMES}
        for source, by in list(self.webhooks.items()):
            for outcome, n in list(by.items()):
                key = (source, WEBHOOK_OUTCOMES.get(outcome, outcome))
                webhooks[key] = webhooks.get(key, 0) + n
        counts = {
            "oncall_webhooks_total": list(webhooks.items()),
            "oncall_events_total": sorted(self.events.items()),
            "oncall_pages_total": sorted(self.pages.items()),
            "oncall_actions_total": sorted(self.actions.items()),
            "oncall_reassurances_total": sorted(self.reassurances.items()),
        }
        for name, ((first, second), help_text) in COUNTERS.items():
            family(out, name, "counter", help_text)
            out += [sample(name, n, **{first: a, second: b}) for (a, b), n in counts[name]]
        family(
            out,
            "oncall_config_reload_failures_total",
            "counter",
            "Edits of the owner's files that did not load (the last good version stayed in force).",
        )
        out.append(sample("oncall_config_reload_failures_total", self.config_reload_failures))
        self.lateness.render(
            out, "oncall_scheduler_lateness_seconds", "How long after its due time each incident timer ran."
        )
        name = "oncall_promises_total"
        family(out, name, "counter", "Promises to customers (reassurance messages) kept or broken.")
        out += [sample(name, n, outcome=o) for o, n in sorted(self.promises.items())]
        self.time_to_ack.render(
            out,
            "oncall_time_to_acknowledge_seconds",
            "From an incident's first page to its first acknowledgement.",
        )
        return out


def family(out: list[str], name: str, kind: str, help_text: str) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def sample(name: str, value: float, **labels: str) -> str:
    text = repr(float(value)) if isinstance(value, float) else str(value)
    if not labels:
        return f"{name} {text}"
    inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {text}"


METRICS = Metrics()
