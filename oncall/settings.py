"""Settings of SPEC §3, read from the environment or a `.env` file.

Every secret is a `SecretStr`, so printing a `Settings` (or logging it by accident) shows
`**********` instead of the value; its repr also hides the database URL's password and the
heartbeat URL's path (a dead-man's switch's key). `oncall.logredact` masks all of them in
every log line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ONCALL_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    database_url: str = "sqlite:///oncall.db"
    rules_file: Path = Path("escalation_rules.toml")
    rotas_dir: Path = Path("rotas")
    public_url: str = "http://localhost:8000"
    admin_token: SecretStr | None = None
    heartbeat_url: str | None = None

    telegram_bot_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_api_url: str = "https://api.twilio.com"
    # The number page calls come from; unset: ONCALL_TWILIO_FROM, unless that is a WhatsApp sender.
    twilio_voice_from: str | None = None

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = None
    smtp_starttls: bool = True

    zendesk_url: str | None = None
    zendesk_email: str | None = None
    zendesk_api_token: SecretStr | None = None
    freshdesk_url: str | None = None
    freshdesk_api_key: SecretStr | None = None

    # Webhook secrets: a comma-separated list accepts any of them (secret rotation).
    shopify_secret: SecretStr | None = None
    stripe_secret: SecretStr | None = None
    woocommerce_secret: SecretStr | None = None
    zendesk_secret: SecretStr | None = None
    freshdesk_token: SecretStr | None = None
    generic_secret: SecretStr | None = None

    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    # Seconds from a request's headers to the last byte of its body; a slower body is 408.
    body_timeout: float = Field(default=10.0, gt=0)

    # Intake worker processes of `oncall serve` (`oncall.web.workers`); None: one fewer than
    # the cores, at most 4 (none on one core); 0: everything in one process.
    workers: int | None = Field(default=None, ge=0, le=64)

    # None: INFO for `oncall serve`, WARNING for the other commands (their output is not a log).
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_any_case(cls, value: Any) -> Any:
        return value.strip().upper() or None if isinstance(value, str) else value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            if name in ("database_url", "heartbeat_url") and isinstance(value, str):
                value = _hidden(value, path=name == "heartbeat_url")
            yield name, value

    @field_validator("public_url", "twilio_api_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        # Links are built as f"{public_url}/ack/…"; a trailing slash would double it.
        return value.rstrip("/")

    @property
    def voice_from(self) -> str | None:
        """The caller id of page calls (SPEC §3: `ONCALL_TWILIO_VOICE_FROM`, else `ONCALL_TWILIO_FROM`
        unless that is `whatsapp:`, which cannot place a call)."""
        if self.twilio_voice_from:
            return self.twilio_voice_from
        if self.twilio_from and not self.twilio_from.startswith("whatsapp:"):
            return self.twilio_from
        return None

    def secrets_for(self, source: str) -> list[bytes]:
        """The accepted secrets of a webhook source; empty when none is configured (→ 401)."""
        names = {
            "shopify": self.shopify_secret,
            "stripe": self.stripe_secret,
            "woocommerce": self.woocommerce_secret,
            "zendesk": self.zendesk_secret,
            "freshdesk": self.freshdesk_token,
            "generic": self.generic_secret,
        }
        secret = names.get(source)
        if secret is None:
            return []
        return [s.strip().encode() for s in secret.get_secret_value().split(",") if s.strip()]


def _hidden(url: str, *, path: bool) -> str:
    """The URL without its password (and, with `path`, without its path and query)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL at all: nothing of it is safe to show
        return "***"
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    if path and (parts.path.strip("/") or parts.query):
        return urlunsplit((parts.scheme, netloc, "/***", "", ""))
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
