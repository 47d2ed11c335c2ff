"""Test-wide settings: CPU by default, deterministic seeds, few threads."""

from __future__ import annotations

import os

# Tests run on CPU unless CROSSMODAL_TEST_DEVICE names another device (e.g. "cuda").
if os.environ.get("CROSSMODAL_TEST_DEVICE", "cpu") == "cpu":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def device() -> torch.device:
    return torch.device(os.environ.get("CROSSMODAL_TEST_DEVICE", "cpu"))


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true")


def _fail_missing_import_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Under CI a skip for a missing module becomes a failure: every optional dependency
    the tests use is in ``requirements.lock``, so such a skip means an install step is
    missing, which a green run must not hide."""
    if _ci() and report.skipped and "could not import" in str(report.longrepr):
        report.outcome = "failed"
        report.longrepr = (
            f"CI: skipped for a missing module (an install step is missing): {report.longrepr}"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    _fail_missing_import_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> object:
    outcome = yield
    _fail_missing_import_skip(outcome.get_result())
