"""`oncall telegram setup`: registers `{ONCALL_PUBLIC_URL}/telegram/webhook` and
`ONCALL_TELEGRAM_WEBHOOK_SECRET` with Telegram (setWebhook), and the bot's command list."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys

from telegram import BotCommand
from telegram.error import TelegramError, TimedOut

from oncall.channels.telegram import TelegramChannel
from oncall.settings import Settings

COMMANDS = [
    ("oncall", "who is on call now, until when, and who is next"),
    ("incidents", "open incidents"),
    ("ack", "acknowledge incident N (or the newest paged to you)"),
    ("resolve", "resolve incident N"),
    ("snooze", "snooze incident N for 30 minutes"),
]


async def setup(settings: Settings) -> str:
    token = settings.telegram_bot_token
    secret = settings.telegram_webhook_secret
    assert token is not None and secret is not None
    channel = TelegramChannel(token.get_secret_value(), settings.telegram_api_url)
    url = f"{settings.public_url}/telegram/webhook"
    try:
        await channel.set_webhook(url, secret.get_secret_value())
        await channel.bot.set_my_commands([BotCommand(c, d) for c, d in COMMANDS])
    finally:
        await channel.aclose()
    return url


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    if settings.telegram_bot_token is None:
        print("error: set ONCALL_TELEGRAM_BOT_TOKEN (from @BotFather) first", file=sys.stderr)
        return 1
    if settings.telegram_webhook_secret is None:
        print(
            "error: set ONCALL_TELEGRAM_WEBHOOK_SECRET first (1-256 of A-Z a-z 0-9 _ -), for example:\n"
            f"  ONCALL_TELEGRAM_WEBHOOK_SECRET={secrets.token_urlsafe(32)}",
            file=sys.stderr,
        )
        return 1
    if not settings.public_url.startswith("https://"):
        print(
            f"warning: Telegram only calls https:// webhooks; ONCALL_PUBLIC_URL is {settings.public_url}",
            file=sys.stderr,
        )
    try:
        url = asyncio.run(setup(settings))
    except TelegramError as exc:
        if isinstance(exc, TimedOut) or str(exc).startswith("httpx."):  # nothing answered
            print(f"error: could not reach Telegram at {settings.telegram_api_url}: {exc}", file=sys.stderr)
        else:
            print(f"error: Telegram refused: {exc}", file=sys.stderr)
        return 1
    print(f"Telegram webhook set to {url} with the secret token")
    print("bot commands registered: " + " ".join(f"/{c}" for c, _ in COMMANDS))
    return 0
