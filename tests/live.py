"""Real `oncall serve` processes for tests: start, kill, stop by PID, post signed webhooks, and
count at the fake providers which incident reached whom by which channel.

A `Server` owns one process at a time on one port (a platform posts to a fixed URL, so a
restarted server listens where the killed one did). Every wait has a deadline.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from oncall.sources import SOURCES
from tests.fakes import Call
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio

SECRET = b"live-test-secret"
TOKEN = "live-admin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], object], seconds: float, interval: float = 0.05) -> bool:
    """Polls until `predicate()` is true or `seconds` have passed; True when it became true."""
    deadline = time.monotonic() + seconds
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def channel_env(
    telegram: FakeTelegram | None = None, slack: FakeSlack | None = None, twilio: FakeTwilio | None = None
) -> dict[str, str]:
    """The settings that point each channel's SDK at its fake."""
    env: dict[str, str] = {}
    if telegram is not None:
        env |= {"ONCALL_TELEGRAM_BOT_TOKEN": "7000000001:live", "ONCALL_TELEGRAM_API_URL": telegram.api_url}
    if slack is not None:
        env |= {"ONCALL_SLACK_BOT_TOKEN": "xoxb-live", "ONCALL_SLACK_API_URL": slack.api_url}
    if twilio is not None:
        env |= {
            "ONCALL_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "ONCALL_TWILIO_AUTH_TOKEN": "live-twilio",
            "ONCALL_TWILIO_FROM": "+34900000000",
            "ONCALL_TWILIO_API_URL": twilio.api_url,
        }
    return env


def write_config(directory: Path, rules: str, rotas: Mapping[str, str]) -> None:
    """escalation_rules.toml and rotas/NAME.toml under `directory`."""
    (directory / "rotas").mkdir(parents=True, exist_ok=True)
    (directory / "escalation_rules.toml").write_text(rules, encoding="utf-8")
    for name, text in rotas.items():
        (directory / "rotas" / f"{name}.toml").write_text(text, encoding="utf-8")


class Server:
    """One `oncall serve` at a time, configured from files in `directory`."""

    def __init__(
        self,
        directory: Path,
        *,
        database_url: str | None = None,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = (),
        name: str = "serve",
    ) -> None:
        self.dir = directory
        self.port = free_port()
        self.database_url = database_url or f"sqlite:///{directory / 'oncall.db'}"
        self.db = Path(self.database_url.removeprefix("sqlite:///"))  # what `query` reads (SQLite)
        self.log = directory / f"{name}.log"
        self.extra_env = dict(env or {})
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.preexec: Callable[[], None] | None = None  # e.g. a resource limit for the child

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def environment(self) -> dict[str, str]:
        return {
            k: v for k, v in os.environ.items() if not k.startswith("ONCALL_")
        } | {
            "ONCALL_DATABASE_URL": self.database_url,
            "ONCALL_RULES_FILE": str(self.dir / "escalation_rules.toml"),
            "ONCALL_ROTAS_DIR": str(self.dir / "rotas"),
            "ONCALL_GENERIC_SECRET": SECRET.decode(),
            "ONCALL_STRIPE_SECRET": SECRET.decode(),
            "ONCALL_ADMIN_TOKEN": TOKEN,
            "ONCALL_PUBLIC_URL": self.url,
        } | self.extra_env  # fmt: skip

    def start(self, within: float = 30.0) -> None:
        """Starts the process and returns once `/healthz` answers."""
        assert self.proc is None, "already running"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "oncall.cli", "serve", "--port", str(self.port), *self.args],
                cwd=self.dir,
                env=self.environment(),
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=self.preexec,  # e.g. a setrlimit, run before exec
            )
        proc = self.proc
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.proc = None
                raise AssertionError(f"oncall serve exited {proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"oncall serve did not answer within {within:g}s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, only what was committed survives."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def terminate(self, within: float = 20.0) -> int:
        """SIGTERM and wait for the graceful stop; returns the exit code."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            code = self.proc.wait(within)
        finally:
            if self.proc.poll() is None:
                self.kill()
        self.proc = None
        return code

    def stop(self) -> None:
        """Whatever state it is in: stopped afterwards (for fixtures' finally)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    # -- HTTP --------------------------------------------------------------------------------

    def post(
        self, payload: Mapping[str, Any], source: str = "generic", timeout: float = 10.0
    ) -> httpx.Response:
        return post_event(self.url, payload, source=source, timeout=timeout)

    def incidents(self) -> list[dict[str, Any]]:
        r = httpx.get(
            f"{self.url}/api/incidents?limit=500", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        )
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    def readyz(self) -> httpx.Response:
        return httpx.get(f"{self.url}/readyz", timeout=10)

    # -- the SQLite store, read from outside -------------------------------------------------

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.db, timeout=10)
        try:
            return [tuple(r) for r in conn.execute(sql, params)]
        finally:
            conn.close()

    def pages(self) -> list[tuple[str, str, str]]:
        return [(k, s, v) for k, s, v in self.query("SELECT key, state, sent_via FROM pages ORDER BY key")]


def post_event(
    url: str, payload: Mapping[str, Any], *, source: str = "generic", timeout: float = 10.0
) -> httpx.Response:
    """A correctly signed delivery of `payload` to `url`/webhooks/`source`."""
    body = json.dumps(payload).encode()
    headers = SOURCES[source].sign(body, SECRET, datetime.now(UTC))
    return httpx.post(f"{url}/webhooks/{source}", content=body, headers=headers, timeout=timeout)


# --- what reached the providers -----------------------------------------------------------------

# The reply code of an SMS page in the languages the product writes (the fault shops are Spanish):
# "Reply 4a to ack" / "Responde 4a para reconocer".
_SMS_CODE = re.compile(r"(?:Reply|Responde) (\d+)a\b")


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def incidents_of(call: Call) -> list[int]:
    """The incidents a delivered page names by its buttons (Telegram, Slack) or reply code (SMS)."""
    p = call.params
    if call.path == "sendMessage":
        rows = (_json(p.get("reply_markup")) or {}).get("inline_keyboard", [])
        data = [b.get("callback_data", "") for row in rows for b in row]
    elif call.path == "chat.postMessage":
        blocks = _json(p.get("blocks")) or []
        data = [e.get("action_id", "") for b in blocks if b.get("type") == "actions" for e in b["elements"]]
    else:
        return [int(n) for n in _SMS_CODE.findall(str(p.get("Body", "")))]
    # A bundle's "Ack all" row (`ack:all`) names no incident of its own: its per-incident buttons do.
    return [int(d.split(":")[1]) for d in data if d.startswith("ack:") and d.split(":")[1].isdigit()]


def deliveries(
    telegram: FakeTelegram | None = None, slack: FakeSlack | None = None, twilio: FakeTwilio | None = None
) -> Counter[tuple[int, str, str]]:
    """How many times each (incident, channel, recipient) page was carried out by a provider.
    The recipient is the Telegram chat, the Slack DM channel or the phone number."""
    out: Counter[tuple[int, str, str]] = Counter()
    for fake, path, channel, to in (
        (telegram, "sendMessage", "telegram", "chat_id"),
        (slack, "chat.postMessage", "slack", "channel"),
        (twilio, "Messages.json", "sms", "To"),
    ):
        if fake is None:
            continue
        for call in fake.succeeded(path):
            for incident in incidents_of(call):
                out[(incident, channel, str(call.params[to]))] += 1
    return out


# --- a shop for fault tests ---------------------------------------------------------------------


def person_id(n: int) -> str:
    return f"p{n:03d}"


def telegram_chat(n: int) -> str:
    return str(1000 + n)


def slack_dm(n: int) -> str:
    return f"D{n:08d}"  # the fake Slack opens DM "D…" for member "U…"


def phone(n: int) -> str:
    return f"+3460000{n:04d}"


def paging_shop(people: int, steps: list[tuple[str, str]], hold: str) -> tuple[str, dict[str, str]]:
    """Rules and rotas of a shop that is closed all day every day (no `[business_hours]`), so
    the real clock never matters. Person N (1…people) has Telegram, Slack and a phone; an event
    tagged `person_id(N)` pages only them, one incident per order, through `steps` (via,
    ack_within) in order."""
    rules = [
        "[shop]",
        'name = "Tienda Fallos"',
        'timezone = "Europe/Madrid"',
        'language = "es"',
        f'fallback = "person:{person_id(1)}"',
    ]
    for n in range(1, people + 1):
        pid = person_id(n)
        rules += ["", "[[policy]]", f'name = "{pid}"']
        for via, ack_within in steps:
            rules += ["  [[policy.step]]", f'  notify = ["person:{pid}"]', f'  via = ["{via}"]']
            rules.append(f'  ack_within = "{ack_within}"')
        rules += [
            "",
            "[[rule]]",
            f'name = "failures for {pid}"',
            f'match = {{ kind = ["payment_failed"], hours = "closed", tags = ["{pid}"] }}',
            'group_by = ["order"]',
            f'hold = "{hold}"',
            f'policy = "{pid}"',
        ]
    people_toml = []
    for n in range(1, people + 1):
        people_toml += [
            f"[person.{person_id(n)}]",
            f'name = "Persona {n}"',
            f"telegram = {telegram_chat(n)}",
            f'slack = "U{n:08d}"',
            f'phone = "{phone(n)}"',
            "",
        ]
    return "\n".join(rules) + "\n", {"people": "\n".join(people_toml)}


def failure(n: int, order: str, delivery: str) -> dict[str, Any]:
    """A generic payment failure for person N's order."""
    return {
        "id": delivery,
        "kind": "payment_failed",
        "summary": f"Card declined on {order}",
        "order": {"id": order, "amount": 20.5, "currency": "EUR"},
        "tags": [person_id(n)],
    }


class Burst:
    """Posts `payloads` in order at about `rate` a second from a few threads, to `urls` in
    turn, each retried as a platform retries (after a refused connection, a reset or any
    non-2xx) until it is answered 2xx or `give_up_after` seconds have passed since the start.

    `accepted` maps each delivery id to the event id of its 2xx answer; `answers` counts every
    attempt's outcome by URL and status ("refused" when there was no HTTP answer)."""

    def __init__(
        self,
        urls: Sequence[str],
        payloads: Sequence[Mapping[str, Any]],
        *,
        rate: float,
        workers: int = 4,
        give_up_after: float = 180.0,
        retry_every: float = 0.1,
    ) -> None:
        self.urls = list(urls)
        self.payloads = list(payloads)
        self.rate = rate
        self.give_up_after = give_up_after
        self.retry_every = retry_every
        self.accepted: dict[str, int] = {}
        self.answers: Counter[tuple[str, str]] = Counter()
        self.attempts: list[tuple[float, float, str, str]] = []  # (sent, answered, url, outcome)
        self._next = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]
        self.started = 0.0

    def start(self) -> Burst:
        self.started = time.monotonic()
        for t in self._threads:
            t.start()
        return self

    def join(self, within: float) -> bool:
        """Waits until every payload was answered 2xx (True) or `within` seconds passed."""
        deadline = time.monotonic() + within
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return len(self.accepted) == len(self.payloads)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def outcomes(self, url: str | None = None) -> Counter[str]:
        out: Counter[str] = Counter()
        with self._lock:
            for (where, outcome), n in self.answers.items():
                if url is None or where == url:
                    out[outcome] += n
        return out

    def _work(self) -> None:
        with httpx.Client(timeout=10.0) as client:
            while not self._stop.is_set():
                i = next(self._next)
                if i >= len(self.payloads):
                    return
                due = self.started + i / self.rate
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
                self._deliver(client, i)

    def _deliver(self, client: httpx.Client, i: int) -> None:
        payload = self.payloads[i]
        body = json.dumps(payload).encode()
        attempt = 0
        while not self._stop.is_set() and time.monotonic() - self.started < self.give_up_after:
            url = self.urls[(i + attempt) % len(self.urls)]
            attempt += 1
            headers = SOURCES["generic"].sign(body, SECRET, datetime.now(UTC))
            sent = time.monotonic()
            try:
                r = client.post(f"{url}/webhooks/generic", content=body, headers=headers)
                outcome = str(r.status_code)
            except httpx.HTTPError:
                r, outcome = None, "refused"
            with self._lock:
                self.answers[(url, outcome)] += 1
                self.attempts.append((sent, time.monotonic(), url, outcome))
                if r is not None and r.is_success:
                    self.accepted[str(payload["id"])] = int(r.json()["event_id"])
                    return
            self._stop.wait(self.retry_every)
