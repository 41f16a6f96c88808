"""The dependency rule: domain/ and dialogue/ stay free of channel, scheduler and web code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("aiogram", "vkbottle", "apscheduler", "aiohttp", "fastapi", "starlette",
             "flask", "django", "jinja2", "bots", "notifications", "config")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in imported_modules(path):
            if module.split(".")[0] in forbidden:
                bad.append(f"{path.relative_to(ROOT)} imports {module}")
    return bad


@pytest.mark.parametrize("package", ["domain", "dialogue"])
def test_core_does_not_import_frameworks(package: str) -> None:
    assert violations(package, FORBIDDEN) == []


def test_domain_does_not_import_dialogue() -> None:
    assert violations("domain", ("dialogue",)) == []


def test_the_scanner_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("import aiogram.types\nfrom vkbottle import Bot\nfrom . import x\n")
    assert imported_modules(sample) == {"aiogram.types", "vkbottle"}
