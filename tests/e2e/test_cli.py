"""The `tsur` command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def tsur(tmp_path: Path, *args: str, stdin: str = "",
         **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "TSUR_DATA_DIR": str(tmp_path / "var"),
                "TSUR_LOG_LEVEL": "WARNING",
                **env}
    full_env.pop("TSUR_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "config.cli", *args], cwd=ROOT, env=full_env,
                          input=stdin, capture_output=True, text=True, timeout=300)


def test_migrate_creates_the_database(tmp_path: Path) -> None:
    result = tsur(tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "var" / "tsur.db").is_file()


def test_user_add_list_disable(tmp_path: Path) -> None:
    added = tsur(tmp_path, "user", "add", "Admin", "admin", TSUR_NEW_PASSWORD="long-enough-1")
    assert added.returncode == 0, added.stderr
    assert "long-enough-1" not in added.stdout + added.stderr
    again = tsur(tmp_path, "user", "add", "admin", "operator", TSUR_NEW_PASSWORD="another-pass")
    assert again.returncode == 2 and again.stderr.startswith("tsur:")
    short = tsur(tmp_path, "user", "add", "op", "operator", TSUR_NEW_PASSWORD="short")
    assert short.returncode == 2
    assert tsur(tmp_path, "user", "disable", "admin").returncode == 0
    listing = tsur(tmp_path, "user", "list")
    assert listing.stdout.split() == ["admin", "admin", "disabled"]
    assert tsur(tmp_path, "user", "disable", "nobody").returncode == 2


def test_bad_configuration_is_reported(tmp_path: Path) -> None:
    result = tsur(tmp_path, "migrate", TSUR_PORT="eighty")
    assert result.returncode == 2 and "TSUR_PORT" in result.stderr


def test_nlu_classify_reads_lines_and_writes_json(tmp_path: Path) -> None:
    texts = "в каспийске третий день нет воды\nяма на дороге в дербенте\n\n"
    result = tsur(tmp_path, "nlu", "classify", stdin=texts)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3
    assert (rows[0]["sector"], rows[0]["municipality"]) == ("housing", "kaspiysk")
    assert (rows[1]["sector"], rows[1]["municipality"]) == ("roads", "derbent")
    assert rows[2] == {"sector": None, "category": None, "confidence": 0.0,
                       "municipality": None}


@pytest.fixture
def labelled_csv(tmp_path: Path) -> Path:
    path = tmp_path / "appeals.csv"
    rows = ["text,sector,category",
            '"нет воды в доме уже два дня",housing,no_water',
            '"мусорные баки переполнены во дворе",waste,container_overflow',
            '"яма на дороге возле школы",roads,potholes',
            '"в поликлинике нет записи к врачу",health,appointment',
            '"автобус не ходит по расписанию",transport,bus_schedule',
            '"отключили свет на всей улице",energy,power_outage']
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_nlu_train_and_eval(tmp_path: Path, labelled_csv: Path) -> None:
    out = tmp_path / "model"
    trained = tsur(tmp_path, "nlu", "train", "--data", str(labelled_csv), "--out", str(out))
    assert trained.returncode == 0, trained.stderr
    assert (out / "meta.json").is_file()
    report = tsur(tmp_path, "nlu", "eval", "--data", str(labelled_csv), "--model", str(out))
    assert report.returncode == 0, report.stderr
    last = report.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"macro_f1=(\d\.\d{3}) accuracy=(\d\.\d{3}) n=6", last)
    assert match, last
    assert float(match.group(2)) >= 5 / 6  # it was trained on these very rows
