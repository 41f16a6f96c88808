"""Settings from ``TSUR_*`` environment variables, read once by the entry point."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, time
from pathlib import Path


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _dates(raw: str) -> tuple[date, ...]:
    return tuple(date.fromisoformat(p.strip()) for p in raw.split(",") if p.strip())


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting, its ``TSUR_`` variable and default (the README's table mirrors this)."""

    data_dir: Path = Path("var")
    database_url: str = ""  # default: SQLite file <data_dir>/tsur.db
    db_pool_size: int = 10  # PostgreSQL connections kept per process (domain.storage.uow)
    db_max_overflow: int = 5  # more PostgreSQL connections for bursts, closed after use
    host: str = "127.0.0.1"
    port: int = 8080
    language: str = "ru"
    timezone: str = "Europe/Moscow"
    catalogue: Path | None = None  # default: the shipped config/catalogue.yaml
    nlu: str = "embedded"  # embedded | rasa | keyword
    nlu_model: Path | None = None  # a model directory from `tsur nlu train`
    rasa_url: str = "http://127.0.0.1:5005"
    nlu_threshold: float = 0.6
    workday_start: time = time(9)
    workday_end: time = time(18)
    extra_holidays: tuple[date, ...] = ()
    extra_workdays: tuple[date, ...] = ()
    max_upload_mb: int = 10
    log_level: str = "INFO"
    telegram_token: str = field(default="", repr=False)
    telegram_api_url: str = ""  # base URL of the Bot API server; default the public one
    telegram_webhook_url: str = ""  # public HTTPS URL; set → webhook mode instead of polling
    telegram_webhook_secret: str = field(default="", repr=False)  # default: from the token
    telegram_webhook_path: str = ""  # local route; default the URL's path
    telegram_webhook_delete_on_stop: bool = False  # keep off with several processes
    telegram_backoffice_chat_id: int = 0  # the operators' forum supergroup
    operators: str = ""  # "telegram_user_id:role,…" — role operator | supervisor | admin
    vk_token: str = field(default="", repr=False)
    vk_group_id: int = 0
    vk_api_url: str = ""  # e.g. http://127.0.0.1:8081/method/; default the public one
    vk_callback_secret: str = field(default="", repr=False)  # with vk_confirmation: Callback
    vk_confirmation: str = ""
    vk_callback_path: str = "/vk/callback"
    survey_reminder_hours: int = 24
    survey_followup_days: int = 14
    survey_reopen_days: int = 30
    deadline_near_ratio: float = 0.75
    deadline_check_minutes: int = 5
    survey_check_seconds: int = 60
    broadcast_check_seconds: int = 30
    redis_url: str = field(default="", repr=False)  # redis://…: limits shared by processes
    leader_lock: str = "auto"  # auto | postgres | redis | file | none: one active scheduler
    leader_check_seconds: float = 2.0
    reuse_port: bool = False  # several `web` processes on one host share TSUR_PORT
    telegram_rate: float = 30.0  # messages/s overall (paid broadcasts: up to 1000)
    vk_rate: float = 20.0  # messages.send requests/s of the community
    outbox_batch: int = 500  # rows an outbox worker claims at a time
    outbox_lease_seconds: float = 120.0  # a claim's lease: a dead worker's rows return
    outbox_retry_seconds: float = 5.0  # first backoff; doubles per attempt
    outbox_retry_max_seconds: float = 3600.0  # the longest backoff
    outbox_max_attempts: int = 10

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'tsur.db').resolve()}"

    def operator_roles(self) -> dict[int, str]:
        """``TSUR_OPERATORS`` parsed: Telegram user id → role."""
        from bots.backoffice.operators import parse_operators

        return parse_operators(self.operators)

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``TSUR_<NAME>`` variables; raises ValueError on bad values."""
        env = os.environ if env is None else env
        converters = {
            "data_dir": Path,
            "catalogue": Path,
            "nlu_model": Path,
            "port": int,
            "db_pool_size": int,
            "db_max_overflow": int,
            "nlu_threshold": float,
            "workday_start": time.fromisoformat,
            "workday_end": time.fromisoformat,
            "extra_holidays": _dates,
            "extra_workdays": _dates,
            "max_upload_mb": int,
            "vk_group_id": int,
            "telegram_backoffice_chat_id": int,
            "telegram_webhook_delete_on_stop": _bool,
            "survey_reminder_hours": int,
            "survey_followup_days": int,
            "survey_reopen_days": int,
            "deadline_near_ratio": float,
            "deadline_check_minutes": int,
            "survey_check_seconds": int,
            "broadcast_check_seconds": int,
            "leader_check_seconds": float,
            "reuse_port": _bool,
            "telegram_rate": float,
            "vk_rate": float,
            "outbox_batch": int,
            "outbox_lease_seconds": float,
            "outbox_retry_seconds": float,
            "outbox_retry_max_seconds": float,
            "outbox_max_attempts": int,
        }
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"TSUR_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = converters.get(f.name, str)(raw)
            except ValueError as exc:
                raise ValueError(f"TSUR_{f.name.upper()}={raw!r}: {exc}") from exc
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.language not in ("ru", "en"):
            raise ValueError("TSUR_LANGUAGE must be ru or en")
        if settings.nlu not in ("embedded", "rasa", "keyword"):
            raise ValueError("TSUR_NLU must be embedded, rasa or keyword")
        if not 0 < settings.deadline_near_ratio < 1:
            raise ValueError("TSUR_DEADLINE_NEAR_RATIO must be between 0 and 1")
        settings.operator_roles()  # validates TSUR_OPERATORS now, not at the first message
        if settings.leader_lock not in ("auto", "postgres", "redis", "file", "none"):
            raise ValueError("TSUR_LEADER_LOCK must be auto, postgres, redis, file or none")
        if settings.leader_lock == "redis" and not settings.redis_url:
            raise ValueError("TSUR_LEADER_LOCK=redis needs TSUR_REDIS_URL")
        if settings.leader_lock == "postgres" and not settings.sqlalchemy_url.startswith(
                "postgresql"):
            raise ValueError("TSUR_LEADER_LOCK=postgres needs a PostgreSQL TSUR_DATABASE_URL")
        for name in ("telegram_rate", "vk_rate", "outbox_batch", "outbox_lease_seconds",
                     "outbox_retry_seconds", "outbox_retry_max_seconds",
                     "outbox_max_attempts", "db_pool_size"):
            if not getattr(settings, name) > 0:
                raise ValueError(f"TSUR_{name.upper()} must be positive")
        if settings.db_max_overflow < 0:
            raise ValueError("TSUR_DB_MAX_OVERFLOW must be 0 or more")
        if not 0 < settings.leader_check_seconds <= 60:
            raise ValueError("TSUR_LEADER_CHECK_SECONDS must be in (0, 60]")
        if bool(settings.vk_callback_secret) != bool(settings.vk_confirmation):
            raise ValueError("TSUR_VK_CALLBACK_SECRET and TSUR_VK_CONFIRMATION go together")
        if (settings.telegram_webhook_url and not settings.telegram_api_url
                and not settings.telegram_webhook_url.startswith("https://")):
            raise ValueError("TSUR_TELEGRAM_WEBHOOK_URL must be https://")
        if settings.vk_token and settings.vk_group_id <= 0:
            raise ValueError("TSUR_VK_GROUP_ID must be set (the community's id) with TSUR_VK_TOKEN")
        return settings
