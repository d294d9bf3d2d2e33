"""What one message of a channel holds, and several pages to one person on one channel merged
into one bundle (SPEC §5): a head, each incident on one line, one ack link acting on all.
Which pages share a message, and when it goes, is `channels.delivery`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from oncall.channels.base import PageMessage
from oncall.core import pagetext

Fits = Callable[[PageMessage], bool]


def fits_for(channel: str) -> Fits | None:
    """What fits in one message of `channel` (None: anything, e.g. the log)."""
    # Imported here: the channel modules load their SDKs, which `import delivery` must not.
    if channel == "telegram":
        from oncall.channels import telegram

        return telegram.fits
    if channel == "slack":
        from oncall.channels import slack

        return slack.fits
    if channel == "sms":
        from oncall.channels import sms

        return sms.fits
    if channel == "voice":
        from oncall.channels import voice

        return voice.fits
    return None


def merge(messages: Sequence[PageMessage], ack_url: str | None = None, more: int = 0) -> PageMessage:
    """Several pages to one person on one channel as one message: a head, each incident on one
    line (its `line`), and `ack_url` acting on all; `more` incidents follow in later messages."""
    if len(messages) == 1 and ack_url is None:
        return messages[0]
    key = "+".join(m.key for m in messages)  # a name for logs; the records are `page_keys`
    page_keys = tuple(k for m in messages for k in m.keys)
    # The same incident queued twice for one person and channel (the console standing in for
    # two channels, or a fail-over meeting the next step) is shown once, as its latest page.
    latest: dict[tuple[int, ...], PageMessage] = {}
    for m in messages:
        latest[m.incident_ids] = m
    if len(latest) == 1:
        return dataclasses.replace(messages[-1], key=key, page_keys=page_keys)
    shown = list(latest.values())
    ids: list[int] = []
    for m in shown:
        ids.extend(i for i in m.incident_ids if i not in ids)
    lines = [line for m in shown for line in _lines(m)]
    first = shown[0]
    link = ack_url or shown[-1].ack_url
    shop = first.shop or _shop_of(first.title)
    lang = first.lang  # one person and channel: one language
    head = pagetext.bundle_head(len(ids), shop, more, lang)
    sms = pagetext.bundle_sms(shop, lines, link, lang)
    return dataclasses.replace(
        first,
        key=key,
        page_keys=page_keys,
        incident_ids=tuple(ids),
        title=head,
        body=pagetext.bundle_body(head, lines, link, lang),
        sms=sms.sms,
        sms_tail=sms.sms_tail,
        ack_url=link,
        line="\n".join(lines),
    )


def _lines(m: PageMessage) -> list[str]:
    if m.line:
        return m.line.split("\n")
    # A message made without its line (a test page): its title, after the shop's name.
    return [f"#{','.join(map(str, m.incident_ids))} {m.title.partition(': ')[2] or m.title}"]


def _shop_of(title: str) -> str:
    return title.partition(":")[0] if ":" in title else ""
