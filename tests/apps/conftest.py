"""Fixtures of the app tests: the headless browser (tests/apps/browser.py)."""

from __future__ import annotations

from tests.apps.browser import browser

__all__ = ["browser"]
