"""The closed-hours report (SPEC §5): how a night or a weekend went — incidents, pages, median
and worst time to acknowledge, customers reassured, promises kept and broken.

Pure: a function of the incidents and promises of a span, so the digest, `oncall report`, the
status page's 8-week chart and their tests all count the same way:

- an incident belongs to the span it opened in; its pages are counted with it;
- time to acknowledge runs from its first page to its first acknowledgement (an ack, a
  snooze, or a resolve without one, by a person or their helpdesk); a paged incident that
  nobody acknowledged (it resolved itself, or it is still open) counts as "never";
- a promise belongs to the span it was made in (one per customer reassured).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from oncall import i18n
from oncall.core import promisetext
from oncall.core.calendar import closed_spans, local_to_utc
from oncall.core.models import BusinessHours
from oncall.core.promises import Promise
from oncall.core.state import Incident

# How far back the default span of `oncall report` may start (a long holiday weekend fits).
LOOKBACK = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class Report:
    start: datetime
    end: datetime
    incidents: int = 0
    cancelled: int = 0  # cancelled during their hold: nobody was paged
    pages: int = 0
    acknowledged: int = 0
    unacknowledged: int = 0  # paged, never acknowledged
    median_ack: timedelta | None = None
    worst_ack: timedelta | None = None
    reassured: int = 0
    kept: int = 0
    broken: int = 0
    open: int = 0  # promises whose deadline has not come yet

    @property
    def empty(self) -> bool:
        return not (self.incidents or self.reassured)

    def lines(self, tz: ZoneInfo, lang: str | None = None) -> list[str]:
        """The report in `lang` (the digest and the status page: the shop's; the CLI: English)."""
        return promisetext.report_lines(
            span(self.start, self.end, tz, lang),
            incidents=self.incidents,
            cancelled=self.cancelled,
            pages=self.pages,
            acknowledged=self.acknowledged,
            unacknowledged=self.unacknowledged,
            median=self.median_ack,
            worst=self.worst_ack,
            reassured=self.reassured,
            kept_count=self.kept,
            broken_count=self.broken,
            still_open=self.open,
            lang=lang,
        )

    def to_json(self) -> dict[str, Any]:
        def seconds(d: timedelta | None) -> int | None:
            return None if d is None else round(d.total_seconds())

        return {
            "since": self.start.isoformat(),
            "until": self.end.isoformat(),
            "incidents": self.incidents,
            "cancelled": self.cancelled,
            "pages": self.pages,
            "acknowledged": self.acknowledged,
            "unacknowledged": self.unacknowledged,
            "time_to_acknowledge": {
                "median_seconds": seconds(self.median_ack),
                "worst_seconds": seconds(self.worst_ack),
            },
            "customers_reassured": self.reassured,
            "promises": {"kept": self.kept, "broken": self.broken, "open": self.open},
        }


def time_to_acknowledge(inc: Incident) -> timedelta | None:
    """From the incident's first page to its first acknowledgement; None if either is missing."""
    if inc.acknowledged_at is None or not inc.paged:
        return None
    first = min(p.at for p in inc.paged)
    return max(timedelta(0), inc.acknowledged_at - first)


def first_acknowledgement(before: Incident, after: Incident) -> timedelta | None:
    """The time to acknowledge, when the step from `before` to `after` was the first ack."""
    return time_to_acknowledge(after) if before.acknowledged_at is None else None


def report(
    incidents: Sequence[Incident], promises: Sequence[Promise], start: datetime, end: datetime
) -> Report:
    """The figures of [start, end)."""
    opened = [i for i in incidents if start <= i.created_at < end]
    paged = [i for i in opened if i.paged]
    acks = sorted(t for t in (time_to_acknowledge(i) for i in paged) if t is not None)
    made = [p for p in promises if start <= p.made_at < end]
    median = None
    if acks:
        median = timedelta(seconds=statistics.median(t.total_seconds() for t in acks))
    return Report(
        start=start,
        end=end,
        incidents=len(opened),
        cancelled=sum(1 for i in opened if i.state == "cancelled"),
        pages=sum(len(i.paged) for i in opened),
        acknowledged=len(acks),
        unacknowledged=len(paged) - len(acks),
        median_ack=median,
        worst_ack=acks[-1] if acks else None,
        reassured=len(made),
        kept=sum(1 for p in made if p.state == "kept"),
        broken=sum(1 for p in made if p.state == "broken"),
        open=sum(1 for p in made if p.state == "open"),
    )


def closed_period(hours: BusinessHours, tz: ZoneInfo, now: datetime) -> tuple[datetime, datetime]:
    """The closed hours a report at `now` is about: while closed, those since the desk closed
    (until `now`); while open, the closed hours that ended when it last opened (what the
    opening digest reported). At most `LOOKBACK` long."""
    spans = closed_spans(hours, tz, now - LOOKBACK, now)
    if not spans:
        return now - timedelta(days=1), now  # open all the time: the last day
    return spans[-1]


def week_start(t: datetime, tz: ZoneInfo) -> datetime:
    """Monday 00:00 (shop time) of the week of `t`, as a UTC instant."""
    local = t.astimezone(tz).date()
    monday: date = local - timedelta(days=local.weekday())
    return local_to_utc(datetime.combine(monday, time()), tz)


def weekly(
    incidents: Sequence[Incident], promises: Sequence[Promise], now: datetime, tz: ZoneInfo, weeks: int = 8
) -> list[Report]:
    """One report per week (Monday to Monday, shop time), the oldest first, the current one last."""
    this = week_start(now, tz)
    starts = []
    for back in range(weeks - 1, -1, -1):
        monday = this.astimezone(tz).date() - timedelta(weeks=back)
        starts.append(local_to_utc(datetime.combine(monday, time()), tz))
    ends = [*starts[1:], now]
    return [report(incidents, promises, a, b) for a, b in zip(starts, ends, strict=True)]


def span(start: datetime, end: datetime, tz: ZoneInfo, lang: str | None = None) -> str:
    """ "Fri 27 Nov 19:00 to Mon 30 Nov 09:00", in shop time."""
    a, b = i18n.day_short(start, lang, tz), i18n.day_short(end, lang, tz)
    return i18n.text(lang, "report.span", start=a, end=b)
