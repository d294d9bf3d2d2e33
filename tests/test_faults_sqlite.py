"""A SQLite store that cannot take writes: locked by another process, or on a full disk.

Against a real `oncall serve`, a webhook is then answered 503 with a JSON error (the platform
retries), never 2xx; `/readyz` is 503 and says why; once the lock is released or space is
freed, the same deliveries are accepted and the held incident pages, without a restart.

The full disk is made two ways, each a run of the test: a 4 MB tmpfs mounted for it and filled
with a file (skipped where mounting is refused: it needs root), and the server's file-size
limit lowered to nothing with `prlimit` on its PID (RLIMIT_FSIZE: CPython ignores SIGXFSZ, so a
write that grows a file fails with EFBIG, which SQLite reports as an I/O error), then raised
again to "free" the space. The second leaves SQLite's files in place, so reading still works
while writing does not: `/readyz` has to try a write to notice.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.telegram import FakeTelegram
from tests.live import (
    Server,
    channel_env,
    deliveries,
    failure,
    paging_shop,
    telegram_chat,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.fault, pytest.mark.slow]


def refused(r: httpx.Response) -> bool:
    """A 503 with the JSON error a platform retries on."""
    return r.status_code == 503 and "store is unavailable" in r.json()["error"]


def paged(telegram: FakeTelegram, *incidents: int) -> bool:
    """Incident N (person N's only one: no page waits in a bundle) reached Telegram, once."""
    return deliveries(telegram=telegram) == {(n, "telegram", telegram_chat(n)): 1 for n in incidents}


def test_a_database_locked_by_another_process_answers_503_and_recovers(
    tmp_path: Path, telegram: FakeTelegram
) -> None:
    rules, rotas = paging_shop(3, [("telegram", "10m")], hold="1s")
    write_config(tmp_path, rules, rotas)
    server = Server(tmp_path, env=channel_env(telegram=telegram))
    locker: subprocess.Popen[str] | None = None
    try:
        server.start()
        assert server.post(failure(1, "o1", "before")).status_code == 202
        assert wait_for(lambda: paged(telegram, 1), 20), server.tail()
        hold_lock = (
            "import sqlite3, sys\n"
            f"db = sqlite3.connect({str(server.db)!r}, isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
            "db.execute('ROLLBACK')\n"
        )
        locker = subprocess.Popen(
            [sys.executable, "-c", hold_lock], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert locker.stdout is not None and locker.stdout.readline() == "locked\n"

        during = server.post(failure(2, "o2", "during"), timeout=60)
        assert refused(during), during.text
        ready = server.readyz()
        assert ready.status_code == 503
        assert "database is locked" in ready.json()["checks"]["store"]["detail"], ready.text

        assert locker.stdin is not None
        locker.stdin.write("\n")
        locker.stdin.close()
        assert locker.wait(10) == 0
        again = server.post(failure(2, "o2", "during"))
        assert again.status_code == 202, again.text  # the retry is stored: the 503 stored nothing
        assert wait_for(lambda: server.readyz().status_code == 200, 20)
        assert wait_for(lambda: paged(telegram, 1, 2), 20), server.tail()
    finally:
        if locker is not None:
            if locker.poll() is None:
                locker.kill()
                locker.wait(10)
            for pipe in (locker.stdin, locker.stdout):
                if pipe is not None and not pipe.closed:
                    pipe.close()
        server.stop()
    stored = server.query("SELECT dedup_key FROM events ORDER BY id")
    assert stored == [("before",), ("during",)]


class Disk:
    """A place for the database that can be filled up and freed again: a tiny tmpfs, or the
    server's file-size limit (RLIMIT_FSIZE, set on its PID with prlimit)."""

    def __init__(self, root: Path, how: str) -> None:
        self.how = how
        self.dir = root / "disk"
        self.dir.mkdir()
        self.filler = self.dir / "filler"
        self.pid: int | None = None
        if how == "tmpfs":
            mount = ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(self.dir)]
            done = subprocess.run(mount, capture_output=True, text=True)
            if done.returncode != 0:
                pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the rlimit variant runs")

    def watch(self, pid: int | None) -> None:
        self.pid = pid

    def fill(self) -> None:
        """No byte left (again: SQLite gives some back when it truncates its WAL)."""
        if self.how == "rlimit":
            assert self.pid is not None
            # No file of the server may grow by a byte: its log lines are lost too, as on a full disk.
            resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
            return
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (65536, 512):
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, b"\0" * size)
        finally:
            os.close(fd)

    def free(self) -> None:
        if self.how == "rlimit":
            assert self.pid is not None
            resource.prlimit(
                self.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
            )
        else:
            self.filler.unlink(missing_ok=True)

    def close(self) -> None:
        if self.how == "tmpfs":
            subprocess.run(["umount", "-l", str(self.dir)], capture_output=True)


@pytest.fixture(params=["tmpfs", "rlimit"])
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Disk]:
    d = Disk(tmp_path, request.param)
    try:
        yield d
    finally:
        d.close()


def test_a_full_disk_answers_503_and_readyz_says_why_until_space_is_freed(
    tmp_path: Path, telegram: FakeTelegram, disk: Disk
) -> None:
    rules, rotas = paging_shop(3, [("telegram", "10m")], hold="1s")
    write_config(tmp_path, rules, rotas)
    server = Server(
        tmp_path, database_url=f"sqlite:///{disk.dir / 'oncall.db'}", env=channel_env(telegram=telegram)
    )
    accepted: list[str] = []
    try:
        server.start()
        disk.watch(server.pid)
        assert server.post(failure(1, "o1", "before")).status_code == 202
        accepted.append("before")
        assert wait_for(lambda: paged(telegram, 1), 20), server.tail()

        def says_full() -> bool:
            disk.fill()
            ready = server.readyz()
            detail = ready.json()["checks"]["store"]["detail"]
            # SQLite reports a write past RLIMIT_FSIZE (EFBIG) as an I/O error, not as "full".
            return ready.status_code == 503 and (
                "full" in detail or (disk.how == "rlimit" and "I/O" in detail)
            )

        # The disk fills up while nothing is happening: /readyz tells before a webhook fails,
        # as soon as its probe needs a byte more (SQLite may first reuse room in its WAL).
        assert wait_for(says_full, 20, interval=0.2), server.readyz().text

        # Should SQLite find room left (its WAL), writes succeed: post until the disk refuses one.
        answers = []
        for n in range(200):
            disk.fill()
            r = server.post(failure(2, "o2", f"full-{n}"))
            answers.append(r.status_code)
            if r.status_code == 202:
                accepted.append(f"full-{n}")
            else:
                break
        assert set(answers) <= {202, 503} and answers[-1] == 503, answers
        assert refused(r), r.text
        refused_id = f"full-{len(answers) - 1}"

        assert wait_for(says_full, 20, interval=0.2), server.readyz().text

        disk.free()
        again = server.post(failure(2, "o2", refused_id))
        assert again.status_code in (200, 202), again.text
        accepted.append(refused_id)
        assert wait_for(lambda: server.readyz().status_code == 200, 20)
        assert server.post(failure(3, "o3", "after")).status_code == 202
        accepted.append("after")
        assert wait_for(lambda: paged(telegram, 1, 2, 3), 20), server.tail()
    finally:
        server.stop()
    stored = [k for (k,) in server.query("SELECT dedup_key FROM events ORDER BY id")]
    assert stored == accepted  # every 2xx is stored, each once, and nothing else
