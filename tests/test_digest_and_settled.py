"""The morning digest (core.digest) and the words for a settled incident (core.settled), as
tables: both were decided inside the service before and are plain functions now."""

from __future__ import annotations

from dataclasses import replace

import pytest

from oncall.core.digest import digest_due, plan_digest
from oncall.core.incident import Entry, Incident, make_world, open_incident
from oncall.core.models import Ticket
from oncall.core.settled import settled_as, settled_text, settled_word
from tests.recording import MADRID, RULES, event, madrid, shop_config

DEFER = RULES[2]  # "other tickets wait for the morning"


def deferred(incident_id: int, ticket: str, at: str) -> Incident:
    world = make_world(shop_config())
    ev = replace(event("ticket_created", madrid(at), customer="Laura"), ticket=Ticket(ticket, "low"))
    return open_incident(incident_id, DEFER, "", ev, ev.received_at, world).incident


class TestTheDigest:
    @pytest.mark.parametrize(
        ("deferred_at", "due"),
        [
            ("2026-11-28 23:10", "2026-11-30 09:00"),  # Saturday night: Monday 09:00
            ("2026-11-30 14:30", "2026-11-30 16:00"),  # Monday's lunch break: the afternoon
            ("2026-12-23 20:00", "2026-12-28 09:00"),  # before the 24th, Christmas and a weekend
        ],
    )
    def test_it_is_due_when_business_hours_next_open(self, deferred_at: str, due: str) -> None:
        assert digest_due(make_world(shop_config()), madrid(deferred_at)) == madrid(due)

    def test_it_lists_every_deferred_item_in_one_post_and_releases_each_incident(self) -> None:
        world = make_world(shop_config())
        now = madrid("2026-11-30 09:00")
        digest = plan_digest(
            [deferred(3, "71", "2026-11-28 23:10"), deferred(4, "72", "2026-11-29 11:00")], world, now
        )
        assert digest is not None
        assert digest.post.target == "slack:#soporte"
        # The team channel is the shop's: the digest is in its language (Spanish).
        assert digest.post.text.splitlines()[0] == "Tienda Ejemplo: 2 avisos esperaron al horario comercial"
        assert [line.split(" ")[1] for line in digest.post.text.splitlines()[1:]] == ["#3", "#4"]
        assert [(o.incident.id, o.incident.state) for o in digest.released] == [
            (3, "resolved"),
            (4, "resolved"),
        ]
        assert (
            digest.released[0].incident.timeline[-1].what
            == "released into the digest posted to slack:#soporte"
        )

    def test_without_a_team_channel_it_goes_to_the_log(self) -> None:
        config = shop_config()
        config = replace(
            config, rules=replace(config.rules, shop=replace(config.rules.shop, team_channel=None))
        )
        digest = plan_digest(
            [deferred(3, "71", "2026-11-28 23:10")], make_world(config), madrid("2026-11-30 09:00")
        )
        assert digest is not None and digest.post.target is None
        assert digest.released[0].incident.timeline[-1].what == "released into the digest posted to the log"

    def test_nothing_deferred_posts_nothing(self) -> None:
        assert plan_digest([], make_world(shop_config()), madrid("2026-11-30 09:00")) is None


def incident(
    state: str, *, wake: str | None = None, acked: str | None = None, resolved: str | None = None
) -> Incident:
    at = madrid("2026-11-28 23:16")
    who = resolved or acked
    return Incident(
        id=4,
        rule="r",
        group_key="",
        state=state,  # type: ignore[arg-type]
        created_at=madrid("2026-11-28 23:10"),
        updated_at=madrid("2026-11-28 23:20"),
        wake_at=madrid(wake) if wake else None,
        acknowledged_by=acked,
        resolved_by=resolved,
        timeline=(Entry(at, f"acted by {who}", who),) if who else (),
    )


class TestSettled:
    @pytest.mark.parametrize(
        ("inc", "word", "text"),
        [
            (
                incident("acknowledged", acked="Ana García"),
                "acknowledged",
                "Incident 4 acknowledged by Ana García at 23:16",
            ),
            (
                incident("acknowledged", acked="Ana García", wake="2026-11-28 23:46"),
                "snoozed",
                "Incident 4 snoozed by Ana García until 23:46",
            ),
            (
                incident("resolved", resolved="Luis Pérez"),
                "resolved",
                "Incident 4 resolved by Luis Pérez at 23:16",
            ),
            (
                incident("resolved"),
                "resolved",
                "Incident 4 resolved at 23:20",
            ),  # by nobody named: when it changed
            (incident("cancelled"), "cancelled", "Incident 4 cancelled at 23:20"),
        ],
    )
    def test_the_word_and_the_line_pages_are_edited_to(self, inc: Incident, word: str, text: str) -> None:
        assert settled_as(inc) == word
        assert settled_text(inc, MADRID) == text

    @pytest.mark.parametrize(
        ("state", "snoozed", "word"),
        [
            ("acknowledged", True, "snoozed"),
            ("acknowledged", False, "acknowledged"),
            ("resolved", True, "resolved"),
        ],
    )
    def test_a_snooze_is_an_acknowledgement_that_wakes_again(
        self, state: str, snoozed: bool, word: str
    ) -> None:
        assert settled_word(state, snoozed) == word
