"""The README's configuration table names every setting there is."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from config.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"`(TSUR_[A-Z0-9_]+)`", README.read_text(encoding="utf-8")))
    settings = {f"TSUR_{f.name.upper()}" for f in fields(Settings)}
    assert settings - documented == set()
