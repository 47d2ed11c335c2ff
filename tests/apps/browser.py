"""Headless Chromium (the system's, driven by Selenium) for the report and web app tests.

``make setup`` installs Debian's ``chromium`` and ``chromium-driver``. Without them a
test skips on a developer machine and fails under CI (``CI=1``), where a skip would hide
a missing set-up step.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# Every <audio>/<video> on the page: tag, readyState, duration, error code.
MEDIA_STATE_JS = """
return [...document.querySelectorAll('audio, video')].map(e => ({
  tag: e.tagName.toLowerCase(), ready: e.readyState, duration: e.duration,
  error: e.error ? e.error.code : null, src: e.currentSrc}));
"""


def _missing(what: str) -> None:
    message = f"{what} not found: run `make setup` (installs chromium and chromium-driver)"
    if os.environ.get("CI", "").lower() in ("1", "true"):
        pytest.fail(message)
    pytest.skip(message)


def _executable(*names: str) -> str | None:
    return next((p for p in map(shutil.which, names) if p), None)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium WebDriver, shared by the session's tests."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium")
    binary = _executable("chromium", "chromium-browser")
    driver_path = _executable("chromedriver")
    if binary is None:
        _missing("chromium")
    if driver_path is None:
        _missing("chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1200,900")
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def media_states(driver: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    """The page's players once each has its metadata (readyState >= 1) or an error."""

    def settled() -> list[dict[str, Any]] | None:
        states = driver.execute_script(MEDIA_STATE_JS)
        done = all(s["ready"] >= 1 or s["error"] is not None for s in states)
        return states if states and done else None

    return wait_for(settled, timeout, "every player's metadata")
