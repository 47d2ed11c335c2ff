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
