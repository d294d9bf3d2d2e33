"""The morning digest (SPEC §2.1 `defer`, §5): incidents set aside out of hours are listed in
one post to the team channel when business hours open, and each is released (resolved) into
it; the post ends with the closed-hours report (`core.report`) of the hours that just ended.

Pure: the shell keeps the one named timer (`DIGEST`), asks `digest_due` when a new deferred
incident needs it, and carries out what `plan_digest` returns when it falls due.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from oncall.core.incident import Incident, Outcome, Post, Released, World, step
from oncall.core.pagetext import digest_text
from oncall.core.report import Report

DIGEST = "digest"  # the name of its timer in the store


def digest_due(world: World, at: datetime) -> datetime | None:
    """When the digest listing an incident deferred (or reporting one opened) at `at` is due:
    business hours next open (None: the shop never opens)."""
    return world.next_open(at)


@dataclass(frozen=True, slots=True)
class Digest:
    post: Post
    released: tuple[Outcome, ...]  # one per deferred incident


def plan_digest(
    deferred: Sequence[Incident], world: World, now: datetime, report: Report | None = None
) -> Digest | None:
    """The digest of the incidents still deferred at `now`, ending with the closed-hours
    `report` (SPEC §5); None when there is nothing to tell."""
    told = report is not None and not report.empty
    if not deferred and not told:
        return None
    shop = world.config.rules.shop
    where = shop.team_channel or "the log"
    parts = [digest_text(deferred, shop, now)] if deferred else []
    if report is not None and told:
        parts.append("\n".join(report.lines(shop.timezone, shop.language)))
    post = Post(shop.team_channel, "\n\n".join(parts))
    return Digest(post, tuple(step(inc, Released(where), now, world) for inc in deferred))
