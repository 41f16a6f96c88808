"""docker-compose.yml checked without Docker: its structure, and that every tsur service's
environment is one `Settings.from_env` accepts. (No engine runs on the test machines.)"""

from __future__ import annotations

import re
import shlex
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.leader import LEASES
from config.roles import ROLES
from config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TSUR = ("tsur-web", "tsur-worker", "tsur-scheduler")
NEW_SETTINGS = ("redis_url", "leader_lock", "leader_check_seconds", "reuse_port")
VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def interpolate(value: str, env: dict[str, str]) -> str:
    """What compose does with ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``."""
    def one(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        if env.get(name):
            return env[name]
        if op and op.endswith("?"):
            raise KeyError(f"{name} is required: {arg}")
        return arg or ""

    return VARIABLE.sub(one, value)


def env_example() -> dict[str, str]:
    pairs = [line.split("=", 1) for line in (ROOT / "deploy/env.example").read_text()
             .splitlines() if line.strip() and not line.startswith("#")]
    return {key: value for key, value in pairs}


def test_the_services_of_the_deployment(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "redis", *TSUR, "nginx", "rasa"}
    assert services["tsur-web"]["deploy"]["replicas"] >= 2
    assert services["tsur-worker"]["deploy"]["replicas"] >= 1
    assert services["tsur-scheduler"]["deploy"]["replicas"] == 2  # shows the failover
    assert services["rasa"]["profiles"] == ["rasa"]
    assert all("profiles" not in services[name] for name in services if name != "rasa")
    assert "ports" not in services["postgres"] and "ports" not in services["redis"]
    for name in TSUR:  # replicas cannot publish one host port: the proxy does
        assert "ports" not in services[name]


@pytest.mark.parametrize("name", TSUR)
def test_each_tsur_service_runs_its_role(compose, name):
    service = compose["services"][name]
    command = service["command"]
    assert command[:3] == ["tsur", "run", "--role"]
    assert command[3] in ROLES and name == f"tsur-{command[3]}"
    assert service["build"] == "." and (ROOT / "Dockerfile").exists()


@pytest.mark.parametrize("name", TSUR)
def test_tsur_waits_for_healthy_postgres_and_redis(compose, name):
    services = compose["services"]
    depends = services[name]["depends_on"]
    for needed in ("postgres", "redis"):
        assert depends[needed] == {"condition": "service_healthy"}
        assert services[needed]["healthcheck"]["test"]
    assert "pg_isready" in str(services["postgres"]["healthcheck"]["test"])
    [volume] = [v for v in services["postgres"]["volumes"] if "/var/lib/postgresql/data" in v]
    assert volume.split(":")[0] in compose["volumes"]


@pytest.mark.parametrize("name", TSUR)
def test_every_tsur_variable_is_a_setting_and_the_whole_is_valid(compose, name):
    environment = compose["services"][name]["environment"]
    known = {f"TSUR_{f.name.upper()}" for f in fields(Settings)}
    assert set(environment) <= known, set(environment) - known
    for setting in NEW_SETTINGS[:3]:
        assert f"TSUR_{setting.upper()}" in environment
    env = {key: interpolate(str(value), env_example()) for key, value in environment.items()}
    settings = Settings.from_env(env)  # raises on anything it would refuse at start-up
    assert settings.sqlalchemy_url.startswith("postgresql+asyncpg://tsur:")
    assert "@postgres:5432/tsur" in settings.sqlalchemy_url
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.leader_lock in LEASES and settings.host == "0.0.0.0"
    assert str(settings.data_dir) == "/data"


def test_the_password_must_be_given(compose):
    url = compose["services"]["tsur-web"]["environment"]["TSUR_DATABASE_URL"]
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        interpolate(url, {})
    assert interpolate(url, {"POSTGRES_PASSWORD": "s3"}).startswith(
        "postgresql+asyncpg://tsur:s3@")


def test_every_variable_compose_reads_is_in_the_env_example(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    used = {name for name, _, _ in VARIABLE.findall(text)}
    example = env_example()
    assert used <= set(example), used - set(example)
    known = {f"TSUR_{f.name.upper()}" for f in fields(Settings)} | {"TSUR_HTTP_PORT"}
    assert {k for k in example if k.startswith("TSUR_")} <= known


def test_the_web_is_health_checked_and_behind_the_proxy(compose):
    services = compose["services"]
    check = " ".join(services["tsur-web"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8080/chat" in check
    nginx = services["nginx"]
    assert nginx["depends_on"] == {"tsur-web": {"condition": "service_healthy"}}
    [mount] = nginx["volumes"]
    source, target, _ = mount.split(":")
    conf = (ROOT / source).read_text()
    assert target == "/etc/nginx/conf.d/default.conf"
    assert "http://tsur-web:8080" in conf and "resolver 127.0.0.11" in conf
    assert "Upgrade $http_upgrade" in conf  # the web chat's WebSocket passes


def test_rasa_is_built_from_the_lock_on_python_310(compose):
    rasa = compose["services"]["rasa"]
    dockerfile = ROOT / rasa["build"]["dockerfile"]
    assert rasa["build"]["context"] == "."
    lines = dockerfile.read_text().splitlines()
    assert lines[[i for i, line in enumerate(lines) if line.startswith("FROM")][0]] == \
        "FROM python:3.10-slim"
    copies = [shlex.split(line)[1:-1] for line in lines if line.startswith("COPY ")]
    sources = [source for copy in copies for source in copy]
    assert "rasa/requirements.txt" in sources
    for source in sources:
        assert (ROOT / source).exists(), source
    assert "-i" in (cmd := " ".join(lines[-2:])) and "0.0.0.0" in cmd and "5005" in cmd
    tsur_env = compose["services"]["tsur-web"]["environment"]
    assert tsur_env["TSUR_RASA_URL"] == "http://rasa:5005"
    assert rasa["healthcheck"]["test"]


def test_the_deployment_settings_are_documented():
    text = (ROOT / "deploy/README.md").read_text()
    for setting in NEW_SETTINGS:
        assert f"`TSUR_{setting.upper()}`" in text
    for role in ROLES:
        assert f"`{role}`" in text
