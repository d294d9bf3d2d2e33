"""Fail-over as one pure rule (core.failover): what a person is paged by when a step's pages
to them failed, once per step, and finally the log."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from oncall.core.failover import failover_key, other_channels, plan_failover
from oncall.core.incident import Page
from oncall.core.models import Person

ANA = Person("ana", "Ana García", phone="+34600111222", telegram=111, slack="UANA")
MARTA = Person("marta", "Marta Ruiz", phone="+34600555666", telegram=333)  # no Slack
NOBODY = Person("olga", "Olga Dueña")  # no contact details at all


@dataclass(frozen=True)
class Row:
    channel: str
    state: str
    sent_via: str | None = None


FAILED = Page("ana", "telegram", 1, 1, "1:1:1:ana:telegram")


@pytest.mark.parametrize(
    ("person", "step_pages", "pages", "note"),
    [
        (  # Telegram failed, Slack still on its way: wait for it
            ANA,
            [Row("telegram", "failed"), Row("slack", "queued")],
            None,
            None,
        ),
        (  # Telegram failed, Slack reached her: nothing more
            ANA,
            [Row("telegram", "failed"), Row("slack", "sent", "slack")],
            None,
            None,
        ),
        (  # both channels of the step failed: SMS, the one she has left
            ANA,
            [Row("telegram", "failed"), Row("slack", "failed")],
            [("sms", "1:1:1:ana:telegram:failover:sms")],
            "Ana García not reached by slack, telegram: paging by sms instead",
        ),
        (  # only Telegram in the step: every other channel she has
            ANA,
            [Row("telegram", "failed")],
            [("slack", "1:1:1:ana:telegram:failover:slack"), ("sms", "1:1:1:ana:telegram:failover:sms")],
            "Ana García not reached by telegram: paging by slack, sms instead",
        ),
        (  # every written channel she has failed: a phone call, the loudest, last
            MARTA,
            [Row("telegram", "failed"), Row("sms", "failed")],
            [("voice", "1:1:1:ana:telegram:failover:voice")],
            "Marta Ruiz not reached by sms, telegram: paging by voice instead",
        ),
        (  # a page that went to the log instead counts as tried by the log
            MARTA,
            [Row("telegram", "failed", "console"), Row("sms", "failed"), Row("voice", "failed")],
            [],
            "Marta Ruiz could not be reached by any channel",
        ),
        (  # every channel she has failed: the log
            MARTA,
            [Row("telegram", "failed"), Row("sms", "failed"), Row("voice", "failed")],
            [("console", "1:1:1:ana:telegram:failover:console")],
            "Marta Ruiz not reached by sms, telegram, voice: paging by console instead",
        ),
        (  # no details at all and the log already tried: nobody left
            NOBODY,
            [Row("console", "failed")],
            [],
            "Olga Dueña could not be reached by any channel",
        ),
    ],
)
def test_what_a_failed_step_pages_instead(
    person: Person, step_pages: list[Row], pages: list[tuple[str, str]] | None, note: str | None
) -> None:
    plan = plan_failover(person, FAILED, step_pages)
    if pages is None:
        assert plan is None
        return
    assert plan is not None
    assert [(p.channel, p.key) for p in plan.pages] == pages
    assert all((p.person, p.step, p.round) == ("ana", 1, 1) for p in plan.pages)
    assert plan.note == note


class TestKeys:
    def test_a_fail_over_of_a_fail_over_keeps_one_key_per_original_page_and_channel(self) -> None:
        once = failover_key("3.1:2:1:ana:telegram", "sms")
        assert once == "3.1:2:1:ana:telegram:failover:sms"
        assert failover_key(once, "slack") == "3.1:2:1:ana:telegram:failover:slack"


class TestOtherChannels:
    @pytest.mark.parametrize(
        ("person", "tried", "usable", "expected"),
        [
            (ANA, (), None, ["telegram", "slack", "sms"]),
            (ANA, ("sms",), None, ["telegram", "slack"]),
            (ANA, ("telegram",), {"sms"}, ["sms"]),
            (MARTA, (), None, ["telegram", "sms"]),
            (NOBODY, (), None, []),
        ],
    )
    def test_in_fail_over_order_leaving_out_what_was_tried_and_what_cannot_send(
        self, person: Person, tried: tuple[str, ...], usable: set[str] | None, expected: list[str]
    ) -> None:
        can = None if usable is None else usable.__contains__
        assert other_channels(person, tried, can) == expected
