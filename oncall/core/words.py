"""A text the core says to a person, kept as data until the reader is known: a catalogue key
and its fields (`oncall.i18n`). The update a delivered page is edited to after an ack goes to
everyone who was paged, each in their own language, so the core cannot write it out once.
A field named `state` is an incident state and is translated too ("acknowledged" →
"reconocido")."""

from __future__ import annotations

from dataclasses import dataclass

from oncall import i18n


@dataclass(frozen=True, slots=True)
class Words:
    key: str
    fields: tuple[tuple[str, str], ...] = ()

    def render(self, lang: str | None = None) -> str:
        values = {k: i18n.state(lang, v) if k == "state" else v for k, v in self.fields}
        return i18n.text(lang, self.key, **values)

    @property
    def en(self) -> str:
        """In English: as the log, the API and the timeline show it."""
        return self.render(None)


def words(key: str, **fields: object) -> Words:
    return Words(key, tuple((k, str(v)) for k, v in fields.items()))


def say(text: str, said: Words | None, lang: str | None) -> str:
    """`said` in `lang` where the core gave its words, else `text` as it is."""
    return said.render(lang) if said is not None else text
