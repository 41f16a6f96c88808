"""Headless Debian Chromium for browser tests (Playwright drives it; no browser download)."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium")
# `make test` sets TSUR_REQUIRE_BROWSER=1: there a missing browser fails instead of skipping.
if CHROMIUM is None and os.environ.get("TSUR_REQUIRE_BROWSER"):
    raise RuntimeError("TSUR_REQUIRE_BROWSER is set but Debian chromium is not installed")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed")
