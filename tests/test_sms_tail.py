"""An SMS page keeps the end the core gave it (`PageMessage.sms_tail`) whatever its wording:
the channel is told where the reply codes start, it does not look for them."""

from __future__ import annotations

from oncall.channels.base import PageMessage
from oncall.channels.sms import page_sms
from oncall.core.gsm7 import septets
from oncall.core.models import Person

ANA = Person("ana", "Ana García", phone="+34600111222")
LINK = "https://oncall.example/ack/x"


def test_a_long_page_is_cut_before_its_tail_even_in_words_the_channel_does_not_know() -> None:
    tail = f"Responde 7a para confirmar {LINK}"  # e.g. a page worded in the shop's language
    message = PageMessage("k", ANA, "sms", (7,), "t", "b", "x" * 400 + " " + tail, LINK, sms_tail=tail)
    sms = page_sms(message)
    assert sms.endswith("...Responde 7a para confirmar " + LINK) and septets(sms) <= 306


def test_a_page_that_fits_goes_out_as_the_core_wrote_it() -> None:
    tail = f"Reply 7a to ack, 7r to resolve {LINK}"
    text = f"Tienda Ejemplo #7: 1 payment failure since 23:10. Waiting 5 min. {tail}"
    assert page_sms(PageMessage("k", ANA, "sms", (7,), "t", "b", text, LINK, sms_tail=tail)) == text
