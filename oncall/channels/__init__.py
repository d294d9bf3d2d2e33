"""Paging channels: one module per channel, each wrapping its official SDK.

`build_channels(settings)` makes one of each; a channel without credentials is still returned
and says `configured() == False`, so the service sends its pages to the console instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oncall.channels.base import Channel

if TYPE_CHECKING:
    from oncall.settings import Settings


def _secret(value: object) -> str | None:
    get = getattr(value, "get_secret_value", None)
    return str(get()) if get is not None else None


def build_channels(settings: Settings, *, timeout: float = 10.0) -> dict[str, Channel]:
    # Imported here: `from oncall.channels.base import …` must not pay for the SDKs.
    from oncall.channels.slack import SlackChannel
    from oncall.channels.sms import SmsChannel
    from oncall.channels.telegram import TelegramChannel
    from oncall.channels.voice import VoiceChannel

    return {
        "telegram": TelegramChannel(
            _secret(settings.telegram_bot_token), settings.telegram_api_url, timeout=timeout
        ),
        "slack": SlackChannel(_secret(settings.slack_bot_token), settings.slack_api_url, timeout=timeout),
        "sms": SmsChannel(
            settings.twilio_account_sid,
            _secret(settings.twilio_auth_token),
            settings.twilio_from,
            api_url=settings.twilio_api_url,
            public_url=settings.public_url,
            timeout=timeout,
        ),
        "voice": VoiceChannel(
            settings.twilio_account_sid,
            _secret(settings.twilio_auth_token),
            settings.voice_from,
            api_url=settings.twilio_api_url,
            public_url=settings.public_url,
            timeout=timeout,
        ),
    }


__all__ = ["Channel", "build_channels"]
