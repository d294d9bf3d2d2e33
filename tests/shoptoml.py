"""`escalation_rules.toml` and rota texts for the tests that run a real `oncall serve` or the
CLI on files.

Each function writes one TOML table as docs/configuration.md and docs/rotas.md do; a test joins
them with `rules(...)` or `rota(...)`. The small shops and rotas those tests share (one Telegram
step for Ana, a payment-failure rule, somebody always on call) are then written once, and each
test still names what is particular to it.

Every shop has an empty `[business_hours]`: closed whatever the real date is, as these tests run
on the real clock (the same as no table at all, see `oncall.config.rules`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

Value = str | int | Sequence[str]


def _value(value: Value | Mapping[str, Value]) -> str:
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, str | int):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    return "[" + ", ".join(_value(v) for v in value) + "]"


def _keys(indent: str, keys: Mapping[str, Value | Mapping[str, Value] | None]) -> list[str]:
    return [f"{indent}{k} = {_value(v)}" for k, v in keys.items() if v is not None]


def edit(path: Path, old: str, new: str) -> None:
    """`old` in the file at `path` (it must be there) replaced once by `new`: an owner's edit."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def rules(*tables: str) -> str:
    return "\n" + "\n\n".join(tables) + "\n"


def shop(fallback: str, name: str = "Tienda Ejemplo", language: str = "es") -> str:
    head = _keys("", {"name": name, "timezone": "Europe/Madrid", "language": language, "fallback": fallback})
    return "\n".join(["[shop]", *head, "", "[business_hours]"])


def step(notify: str | Sequence[str], via: str | Sequence[str], ack_within: str = "10m") -> str:
    """One `[[policy.step]]`; a single target or channel may be given as a plain string."""
    listed = {"notify": [notify] if isinstance(notify, str) else notify}
    listed["via"] = [via] if isinstance(via, str) else via
    return "\n".join(["  [[policy.step]]", *_keys("  ", {**listed, "ack_within": ack_within})])


def policy(name: str, *steps: str, repeat: int | None = None) -> str:
    return "\n".join(["[[policy]]", *_keys("", {"name": name, "repeat": repeat}), *steps])


def rule(name: str, match: Mapping[str, Value], policy: str, **keys: Value) -> str:
    """One `[[rule]]`: `keys` are its other keys (hold, group_by, cancel_on, reassure…)."""
    return "\n".join(["[[rule]]", *_keys("", {"name": name, "match": match, **keys, "policy": policy})])


def message(name: str, es: str, en: str | None = None) -> str:
    return "\n".join([f"[message.{name}]", *_keys("", {"es": es, "en": en})])


# The night shop of the promise tests: Ana by Telegram, Laura reassured by e-mail at once.
def night_shop(language: str = "es") -> str:
    return rules(
        shop("person:ana", language=language),
        policy("night", step("person:ana", "telegram")),
        rule("payment failures", {"kind": ["payment_failed"]}, "night", hold="0s", reassure="payment_failed"),
        message(
            "payment_failed",
            "Hola {customer_name}, te escribimos en menos de {response_time}.",
            "Hi {customer_name}, we will write within {response_time}.",
        ),
    )


NIGHT_SHOP = night_shop()


def weekend_failures(**keys: Value) -> str:
    """The weekend story's rule (policy "weekend"): payment failures while closed, grouped by
    kind, held 2 s, cancelled by a success; `keys` adds to it (e.g. reassure)."""
    match: dict[str, Value] = {"kind": ["payment_failed"], "hours": "closed"}
    return rule("payment failures while closed", match, "weekend", group_by=["kind"], hold="2s",
                cancel_on=["payment_succeeded"], **keys)  # fmt: skip


# --- rotas/NAME.toml ---------------------------------------------------------------------------


def rota(*tables: str, timezone: str | None = "Europe/Madrid") -> str:
    head = _keys("", {"timezone": timezone})
    return "\n" + "\n\n".join(["\n".join([*head, tables[0]]), *tables[1:]]) + "\n"


def layer(name: str, members: Sequence[str], rotation: str, handoff: str, start: str, **keys: Value) -> str:
    """One `[[layer]]`: `keys` are its other keys (active…)."""
    listed = {"name": name, "members": members, "rotation": rotation, "handoff": handoff, "start": start}
    return "\n".join(["[[layer]]", *_keys("", {**listed, **keys})])


def override(who: str, start: str, end: str, note: str | None = None) -> str:
    return "\n".join(["[[override]]", *_keys("", {"who": who, "from": start, "to": end, "note": note})])


def always(who: str) -> str:
    """A rota of one person, on call every day of the year since 2026 (in the shop's time zone)."""
    return rota(layer("all", [who], "daily", "09:00", "2026-01-01"), timezone=None)
