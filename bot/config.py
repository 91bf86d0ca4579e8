"""Settings from the environment and `.env` (pydantic-settings).

Every setting has an upper-case environment name equal to the field name.  Bad or
missing values stop start-up with one line naming the setting (see `load_settings`).
Secrets are `SecretStr`, so they never show up in logs or reprs.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from storage.db import url_backend

URL_SETTINGS = (
    "telegram_api_base",
    "telegram_webhook_url",
    "whatsapp_api_base",
    "geocoder_url",
    "bmkg_autogempa_url",
    "bmkg_nowcast_rss_url",
    "public_base_url",
    "map_tile_url",
    "leaflet_url",
)
PATH_RE = re.compile(r"^/[A-Za-z0-9._~/-]*$")


class SettingsError(Exception):
    """A setting is missing or invalid; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- storage -----------------------------------------------------------------------
    database_url: str = Field(
        default="sqlite:///./data/lapor.db",
        description="SQLAlchemy URL. SQLite (default) or postgresql://user@host/db",
    )
    media_dir: Path = Field(default=Path("./data/media"), description="Where photos are stored")
    max_photo_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=50 * 1024 * 1024)

    # --- city and language ---------------------------------------------------------------
    city: str = Field(default="palu", description="City profile name (cities/<name>.toml)")
    cities_dir: Path | None = Field(default=None, description="Folder with city profiles")
    default_locale: str = Field(default="id", pattern="^(id|en)$")

    duplicate_radius_m: float = Field(
        default=50.0, gt=0, le=1000, description="open report of the same category this close"
    )

    # --- Telegram ------------------------------------------------------------------------
    telegram_bot_token: SecretStr | None = None
    telegram_api_base: str = "https://api.telegram.org"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_webhook_path: str = "/telegram"
    telegram_poll_timeout: int = Field(default=25, ge=0, le=50)
    telegram_rate_global: float = Field(default=30.0, ge=0, description="msg/s; 0 = unlimited")
    telegram_rate_per_chat: float = Field(default=1.0, ge=0, description="msg/s; 0 = unlimited")
    # Paid broadcasts (Bot API 7.11 `allow_paid_broadcast`): warnings go at up to 1,000 msg/s
    # for 0.1 Star a message, paid from the bot's balance, until the month's budget is spent.
    telegram_paid_broadcast: bool = Field(default=False, description="warnings on paid lane")
    telegram_paid_rate: float = Field(default=1000.0, gt=0, le=1000, description="msg/s paid")
    telegram_paid_stars_budget: float = Field(
        default=10_000.0, ge=0, description="Stars per calendar month (UTC) for paid broadcasts"
    )

    # --- WhatsApp Cloud API ------------------------------------------------------------
    whatsapp_token: SecretStr | None = None
    whatsapp_phone_id: str | None = None
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_api_base: str = "https://graph.facebook.com"
    whatsapp_api_version: str = Field(default="v21.0", pattern=r"^v\d+\.\d+$")
    whatsapp_webhook_path: str = "/whatsapp"
    whatsapp_rate: float = Field(
        default=80.0,
        ge=0,
        le=1000,
        description="msg/s per phone number: its throughput tier (80; up to 1000 when upgraded)",
    )
    whatsapp_template_status: str = "status_laporan"
    whatsapp_template_warning: str = "peringatan_dini"
    whatsapp_template_lang: str = "id"

    # --- geocoding (Nominatim-compatible) -----------------------------------------------
    geocoder_url: str | None = None
    geocoder_user_agent: str = "lapor-warga/0.1 (+https://github.com/lapor-warga)"

    # --- warnings: sensors, BMKG, CAP ----------------------------------------------------
    mqtt_url: str | None = None  # mqtt://127.0.0.1:1883
    bmkg_autogempa_url: str | None = None
    bmkg_nowcast_rss_url: str | None = None
    bmkg_poll_seconds: float = Field(default=60.0, ge=1.0)
    public_base_url: str | None = None  # how others reach our HTTP server (CAP/Atom links)
    bmkg_quake_max_age_minutes: float = Field(default=60.0, ge=1.0)
    sensor_tokens: dict[str, SecretStr] = Field(
        default_factory=dict, description='JSON: {"benanga": "token"}; or token_sha256 in profile'
    )
    cap_api_key: SecretStr | None = None  # trusted CAP senders POST /cap with X-API-Key
    alerts_enabled: bool = True  # fan-out, sensors, BMKG polling, CAP routes
    broadcast_batch: int = Field(default=500, ge=1, le=10_000)

    # --- the bot's own HTTP server -------------------------------------------------------
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)

    # --- public web: Open311 API, map, dashboard, demo chat --------------------------------
    demo_enabled: bool | None = Field(
        default=None, description="web demo chat at /demo; unset = on only with no other channel"
    )
    map_tile_url: str | None = Field(
        default=None, description="map tiles, e.g. https://t.example/{z}/{x}/{y}.png; unset=none"
    )
    map_tile_attribution: str = "&copy; OpenStreetMap contributors"
    leaflet_url: str | None = Field(
        default=None, description="base URL of Leaflet (leaflet.js, leaflet.css); none = bundled"
    )
    open311_max_page_size: int = Field(default=500, ge=1, le=5000)

    # --- workers -------------------------------------------------------------------------
    scheduler_enabled: bool = True
    sender_concurrency: int = Field(
        default=64, ge=1, le=512, description="requests in flight (rate x round trip)"
    )
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")

    @field_validator("database_url")
    @classmethod
    def _database(cls, v: str) -> str:
        if url_backend(v) is None:
            raise ValueError("use sqlite:///PATH or postgresql://USER@HOST/DATABASE")
        return v

    @field_validator(*URL_SETTINGS)
    @classmethod
    def _http_url(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None or (info.field_name == "leaflet_url" and v.startswith("/")):
            return v  # LEAFLET_URL may also be a path on this server
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in v:
            raise ValueError("must be a URL starting with http:// or https://")
        if info.field_name == "map_tile_url" and not all(p in v for p in ("{z}", "{x}", "{y}")):
            raise ValueError("needs {z}, {x} and {y}, e.g. https://tile.example/{z}/{x}/{y}.png")
        return v.rstrip("/") if info.field_name == "telegram_api_base" else v

    @field_validator("telegram_webhook_path", "whatsapp_webhook_path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not PATH_RE.match(v):
            raise ValueError("must be a path starting with / (letters, digits, - . _ ~ /)")
        return v

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None
        raw = v.get_secret_value()
        head, _, tail = raw.partition(":")
        if not head.isdigit() or len(tail) < 10:
            raise ValueError("does not look like a BotFather token (<digits>:<secret>)")
        return v

    @property
    def telegram_enabled(self) -> bool:
        return self.telegram_bot_token is not None

    @property
    def whatsapp_enabled(self) -> bool:
        return bool(self.whatsapp_token or self.whatsapp_phone_id)

    @property
    def demo_active(self) -> bool:
        """The web demo runs when asked for, or when no real chat channel is configured."""
        if self.demo_enabled is not None:
            return self.demo_enabled
        return not (self.telegram_enabled or self.whatsapp_enabled)

    @property
    def telegram_webhook_enabled(self) -> bool:
        return bool(self.telegram_webhook_url)


def load_settings(**overrides: object) -> Settings:
    """Build settings; turn pydantic's error into one clear line naming the setting."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]).upper() if err.get("loc") else "?"
        message = str(err["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"setting {name}: {message}") from None
    except SourceError as exc:  # a JSON setting (SENSOR_TOKENS) that is not JSON
        found = re.search(r'field "(\w+)"', str(exc))
        name = found.group(1).upper() if found else "?"
        raise SettingsError(f"setting {name}: not valid JSON") from None
    if settings.telegram_webhook_url and settings.telegram_webhook_secret is None:
        raise SettingsError(
            "setting TELEGRAM_WEBHOOK_SECRET: required when TELEGRAM_WEBHOOK_URL is set"
        )
    return settings
