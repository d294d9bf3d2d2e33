"""The status page's chart of the last 8 weeks (`web.chart`): inline SVG drawn on the server,
400 units wide (a phone's width), one labelled bar per week for incidents, median time to
acknowledge, and promises kept and broken."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from oncall.core.report import weekly
from oncall.web.chart import WIDTH, weekly_chart
from tests.recording import MADRID, madrid
from tests.test_report import PROMISES, WEEKEND

SVG = ""  # inline in HTML: no namespace written


def chart() -> ET.Element:
    weeks = weekly(WEEKEND, PROMISES, madrid("2026-12-02 12:00"), MADRID)
    return ET.fromstring(weekly_chart(weeks, MADRID))


def bars(root: ET.Element, kind: str) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect") if r.get("class") == f"bar {kind}"]


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_it_is_a_phone_wide_svg_with_three_titled_panels() -> None:
    root = chart()
    assert root.get("viewBox", "").split()[:3] == ["0", "0", str(WIDTH)]
    assert root.get("role") == "img" and root.findtext(f"{SVG}title") == "The last 8 weeks"
    for title in ("Incidents per week", "Median time to acknowledge (minutes)", "Promises kept and broken"):
        assert title in texts(root)


def test_each_week_is_labelled_by_its_monday_in_every_panel() -> None:
    labels = texts(chart())
    mondays = ["12 Oct", "19 Oct", "26 Oct", "2 Nov", "9 Nov", "16 Nov", "23 Nov", "30 Nov"]
    for monday in mondays:
        assert labels.count(monday) == 3


def test_the_bars_and_their_figures_are_the_weeks() -> None:
    root = chart()
    [last_week, this_week] = bars(root, "incidents")  # the six weeks before had none
    assert float(last_week.get("height", 0)) > float(this_week.get("height", 0)) > 0  # 6 and 1
    assert last_week.findtext(f"{SVG}title") == "week of 23 Nov: 6 incidents"
    [ack] = bars(root, "ack")
    assert ack.findtext(f"{SVG}title") == "week of 23 Nov: median 7 min to acknowledge"
    [kept] = bars(root, "kept")
    [broken] = bars(root, "broken")
    assert kept.findtext(f"{SVG}title") == "week of 23 Nov: 3 kept"
    assert broken.findtext(f"{SVG}title") == "week of 23 Nov: 1 broken"
    labels = texts(root)
    assert "6" in labels and "7" in labels and "3/1" in labels


def test_weeks_without_anything_draw_no_bars_and_a_dash_for_the_median() -> None:
    root = ET.fromstring(weekly_chart(weekly([], [], madrid("2026-12-02 12:00"), MADRID), MADRID))
    assert [bars(root, k) for k in ("incidents", "ack", "kept", "broken")] == [[], [], [], []]
    assert texts(root).count("—") == 8 and texts(root).count("0") == 16
