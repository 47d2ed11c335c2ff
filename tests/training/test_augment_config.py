"""``data.augment``: the config fields and what the training dataset gets from them."""

from __future__ import annotations

import pytest

from crossmodal.config import ConfigError, load_config
from crossmodal.data import AudioSpec, ClipAugment, SpecAugment
from crossmodal.errors import CrossmodalError
from crossmodal.training.builders import training_augmentations
from crossmodal.training.config import TrainConfig

MEL = AudioSpec()
WAVE = AudioSpec(representation="waveform")


def test_all_off_by_default() -> None:
    assert training_augmentations(TrainConfig(), MEL) == {"augment": None, "spec_augment": None}


def test_fields_reach_the_dataset() -> None:
    cfg = load_config(
        TrainConfig,
        None,
        ["--data.augment.crop", "0.2", "--data.augment.noise", "0.1", "--spec_augment", "true"],
    )
    parts = training_augmentations(cfg, MEL)
    assert parts["augment"] == ClipAugment(crop=0.2, noise=0.1)
    assert isinstance(parts["spec_augment"], SpecAugment)
    # Frame and music transforms act on either music input; SpecAugment needs log-mels.
    only_frames = load_config(TrainConfig, None, ["--data.augment.colour", "0.3"])
    assert training_augmentations(only_frames, WAVE)["augment"] == ClipAugment(colour=0.3)
    gain = load_config(TrainConfig, None, ["--gain_db", "3"])
    assert training_augmentations(gain, WAVE)["augment"] == ClipAugment(gain_db=3.0)
    with pytest.raises(CrossmodalError, match=r"masks log-mel bands.*summary_lags: 100"):
        training_augmentations(load_config(TrainConfig, None, ["--spec_augment", "true"]), WAVE)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--data.augment.crop", "1"], "data.augment.crop must be in"),
        (["--data.augment.colour", "-0.1"], "data.augment.colour must be in"),
        (["--data.augment.eq_db", "-2"], "data.augment.eq_db must be >= 0"),
    ],
)
def test_bad_strengths_name_the_field(override: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(TrainConfig, None, override)
