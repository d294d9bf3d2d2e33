"""The status page's chart of the last weeks (SPEC §5): incidents, median time to acknowledge,
promises kept and broken, one bar per week — drawn here as inline SVG, so the page needs no
JavaScript and no external asset, and reads on a 400-px-wide phone: the drawing is 400 units
wide and scales to the screen, three panels stacked, each bar labelled with its value and each
week with its Monday.

Pure: a function of the weekly reports (`core.report.weekly`); every text is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from babel.dates import format_date

from oncall import i18n
from oncall.core import promisetext
from oncall.core.report import Report

WIDTH = 400
PANEL = 130  # height of one panel: title, bars, week labels
BAR_TOP = 34  # where the tallest bar starts (room for the title and its value label)
BAR_BOTTOM = 104  # the baseline
SIDE = 6
COLOURS = {"incidents": "#3b6ea8", "ack": "#a86400", "kept": "#1f7a3d", "broken": "#c0392b"}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _text(x: float, y: float, text: str, *, size: int = 12, anchor: str = "middle", weight: str = "") -> str:
    bold = f' font-weight="{weight}"' if weight else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{bold}>{_e(text)}</text>'


def _minutes(m: float) -> str:
    """ "7", "22"; under ten minutes to a tenth ("0.4"), so a short bar is never labelled 0."""
    return f"{m:.0f}" if m >= 10 else f"{m:.1f}".removesuffix(".0")


def _panel(
    top: float,
    title: str,
    weeks: Sequence[str],
    stacks: Sequence[Sequence[tuple[str, float, str]]],
    labels: Sequence[str],
) -> list[str]:
    """One panel: `stacks[i]` are the (kind, value, tooltip) segments of week i's bar,
    `labels[i]` the figure written above it."""
    out = [_text(SIDE, top + 16, title, size=14, anchor="start", weight="600")]
    n = max(1, len(weeks))
    slot = (WIDTH - 2 * SIDE) / n
    bar = slot * 0.62
    highest = max((sum(v for _, v, _ in s) for s in stacks), default=0.0) or 1.0
    scale = (BAR_BOTTOM - BAR_TOP) / highest
    base = top + BAR_BOTTOM
    axis = f'x1="{SIDE}" y1="{base:.1f}" x2="{WIDTH - SIDE}" y2="{base:.1f}"'
    out.append(f'<line {axis} stroke="#999" stroke-width="1"/>')
    for i, (week, segments, label) in enumerate(zip(weeks, stacks, labels, strict=True)):
        x = SIDE + i * slot + (slot - bar) / 2
        y = base
        for kind, value, tip in segments:
            if value <= 0:
                continue
            h = value * scale
            y -= h
            out.append(
                f'<rect class="bar {kind}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}"'
                f' fill="{COLOURS[kind]}"><title>{_e(tip)}</title></rect>'
            )
        centre = x + bar / 2
        out.append(_text(centre, y - 4, label))
        out.append(_text(centre, base + 16, week, size=12))
    return out


def weekly_chart(reports: Sequence[Report], tz: ZoneInfo, lang: str | None = None) -> str:
    """The SVG of one report per week, the oldest first, labelled in `lang` (the shop's). No
    `xmlns`: inside an HTML page the parser puts `<svg>` in the SVG namespace itself (and the
    page names no outside URL)."""

    def t(key: str, **fields: object) -> str:
        return i18n.text(lang, f"chart.{key}", **fields)

    weeks = [format_date(r.start.astimezone(tz), "d MMM", locale=i18n.base(lang)) for r in reports]
    incidents = [
        [("incidents", float(r.incidents), t("week_incidents", week=w, n=r.incidents))]
        for r, w in zip(reports, weeks, strict=True)
    ]
    ack_minutes = [r.median_ack.total_seconds() / 60 if r.median_ack is not None else 0.0 for r in reports]
    acks = [
        [("ack", m, t("week_ack", week=w, median=promisetext.minutes(r.median_ack, lang)))]
        for r, w, m in zip(reports, weeks, ack_minutes, strict=True)
    ]
    promises = [
        [
            ("kept", float(r.kept), t("week_kept", week=w, n=r.kept)),
            ("broken", float(r.broken), t("week_broken", week=w, n=r.broken)),
        ]
        for r, w in zip(reports, weeks, strict=True)
    ]
    parts: list[str] = []
    parts += _panel(0, t("incidents"), weeks, incidents, [str(r.incidents) for r in reports])
    parts += _panel(
        PANEL,
        t("ack"),
        weeks,
        acks,
        [_minutes(m) if r.median_ack is not None else "—" for r, m in zip(reports, ack_minutes, strict=True)],
    )
    parts += _panel(
        2 * PANEL,
        t("promises"),
        weeks,
        promises,
        [f"{r.kept}/{r.broken}" if r.kept or r.broken else "0" for r in reports],
    )
    legend_y = 3 * PANEL + 8
    parts.append(f'<rect x="{SIDE}" y="{legend_y - 10}" width="12" height="12" fill="{COLOURS["kept"]}"/>')
    parts.append(_text(SIDE + 18, legend_y, t("kept"), anchor="start"))
    parts.append(
        f'<rect x="{SIDE + 80}" y="{legend_y - 10}" width="12" height="12" fill="{COLOURS["broken"]}"/>'
    )
    parts.append(_text(SIDE + 98, legend_y, t("broken"), anchor="start"))
    height = 3 * PANEL + 16
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img"'
        f' aria-label="{_e(t("title"))}" font-family="system-ui,sans-serif" fill="#222">'
        f"<title>{_e(t('title'))}</title>{''.join(parts)}</svg>"
    )
