from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest

from config.settings import Settings


def test_defaults_use_sqlite_in_var() -> None:
    s = Settings.from_env({})
    assert s.port == 8080 and s.host == "127.0.0.1" and s.language == "ru"
    assert s.sqlalchemy_url.startswith("sqlite+aiosqlite:///")
    assert s.sqlalchemy_url.endswith("/var/tsur.db")


def test_values_are_converted() -> None:
    s = Settings.from_env({
        "TSUR_PORT": "9000", "TSUR_DATA_DIR": "/tmp/x", "TSUR_WORKDAY_START": "08:30",
        "TSUR_EXTRA_HOLIDAYS": "2026-12-30, 2026-12-29", "TSUR_NLU_THRESHOLD": "0.4",
        "TSUR_DATABASE_URL": "postgresql+asyncpg://u@h/db",
    })
    assert s.port == 9000 and s.data_dir == Path("/tmp/x")
    assert s.workday_start == time(8, 30) and s.nlu_threshold == 0.4
    assert s.extra_holidays == (date(2026, 12, 30), date(2026, 12, 29))
    assert s.sqlalchemy_url == "postgresql+asyncpg://u@h/db"


@pytest.mark.parametrize("env", [{"TSUR_PORT": "eighty"}, {"TSUR_LANGUAGE": "de"},
                                 {"TSUR_EXTRA_WORKDAYS": "2026-13-01"}])
def test_bad_values_are_reported(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="TSUR_"):
        Settings.from_env(env)


def test_tokens_are_not_shown_in_repr() -> None:
    s = Settings.from_env({"TSUR_TELEGRAM_TOKEN": "123:secret", "TSUR_VK_TOKEN": "vk-secret",
                           "TSUR_VK_GROUP_ID": "42"})
    assert s.telegram_token == "123:secret" and s.vk_group_id == 42
    assert "secret" not in repr(s)


def test_vk_token_needs_the_group_id() -> None:
    with pytest.raises(ValueError, match="TSUR_VK_GROUP_ID"):
        Settings.from_env({"TSUR_VK_TOKEN": "vk-secret"})


def test_operators_are_parsed_and_checked() -> None:
    s = Settings.from_env({"TSUR_OPERATORS": "123:operator, 456:admin",
                           "TSUR_TELEGRAM_BACKOFFICE_CHAT_ID": "-1001234"})
    assert s.operator_roles() == {123: "operator", 456: "admin"}
    assert s.telegram_backoffice_chat_id == -1001234
    with pytest.raises(ValueError, match="TSUR_OPERATORS"):
        Settings.from_env({"TSUR_OPERATORS": "123:boss"})


@pytest.mark.parametrize("env", [
    {"TSUR_VK_CALLBACK_SECRET": "s"},
    {"TSUR_TELEGRAM_WEBHOOK_URL": "http://example.org/hook"},
    {"TSUR_TELEGRAM_WEBHOOK_DELETE_ON_STOP": "maybe"},
])
def test_webhook_settings_are_checked(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="TSUR_"):
        Settings.from_env(env)
