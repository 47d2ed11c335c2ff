"""Fixtures of the training tests: a tiny synthetic corpus (built once per session), one
feature cache, and tiny configs, so that a training step takes milliseconds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crossmodal.config import load_config
from crossmodal.training.config import TrainConfig
from tests.training.helpers import CLIP_SECONDS, CLIPS, SPLIT, tiny_overrides


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Manifest of 32 synthetic clips (24 train / 4 val / 4 test, six moods)."""
    from crossmodal.data.synth.corpus import SynthConfig, generate_corpus

    out = tmp_path_factory.mktemp("corpus")
    config = SynthConfig(
        clips=CLIPS,
        size=32,
        duration=CLIP_SECONDS,
        fps=8.0,
        sample_rate=8000,
        split=tuple(float(s) for s in SPLIT),
    )
    return generate_corpus(out, config, progress=False)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One feature cache for the session: clips are decoded once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def make_config(corpus: Path, cache_dir: Path) -> Callable[..., TrainConfig]:
    """``make_config(epochs=3, **{"optim.lr": 1e-2})`` → a tiny TrainConfig."""

    def make(**fields: Any) -> TrainConfig:
        return load_config(TrainConfig, None, tiny_overrides(corpus, cache_dir, **fields))

    return make


@pytest.fixture(autouse=True)
def _no_curves(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Drawing curves.png costs ~0.5 s of matplotlib per run; tests that check it ask for
    ``real_curves``, the others skip it (plot_curves is tested on its own)."""
    if "real_curves" not in request.fixturenames:
        monkeypatch.setattr("crossmodal.training.trainer.plot_curves", lambda *args: None)


@pytest.fixture
def real_curves() -> None:
    """Request it to have the trainer draw curves.png."""
