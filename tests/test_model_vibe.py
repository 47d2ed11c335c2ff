"""A model with a vibe part: two heads on the same backbone features, the stored vector,
mood prediction, and files that load with weights_only=True."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from crossmodal.config import ConfigError
from crossmodal.model import CrossModalModel, ModelConfig
from tests.test_model import batch, small_config


def test_two_heads_on_the_same_features_give_the_weighted_unit_norm_vector() -> None:
    model = CrossModalModel.from_config(small_config(vibe_dim=8, blend=0.3)).eval()
    video, audio = batch(model)
    with torch.no_grad():
        video_emb, music_emb = model(video, audio)
        assert video_emb.shape == music_emb.shape == (4, 24)
        assert model.embed_dim == 24
        torch.testing.assert_close(video_emb.norm(dim=1), torch.ones(4))
        features = model.backbone("music", audio)
        sync = F.normalize(model.heads["music"](features), dim=-1)
        vibe = F.normalize(model.vibe_heads["music"](features), dim=-1)
        torch.testing.assert_close(music_emb[:, :16], math.sqrt(0.7) * sync)
        torch.testing.assert_close(music_emb[:, 16:], math.sqrt(0.3) * vibe)


def test_moods_are_predicted_and_survive_a_weights_only_round_trip(tmp_path: Path) -> None:
    model = CrossModalModel.from_config(small_config(vibe_dim=4)).eval()
    assert model.predict_mood(torch.randn(2, 20)) is None  # no moods set yet
    centres = torch.eye(4)[:3] * 2.0
    model.set_moods(["calm", "happy", "tense"], centres)
    emb = model.layout.combine(F.normalize(torch.randn(3, 16), dim=1), torch.eye(4)[[2, 0, 1]])
    assert model.predict_mood(emb) == ["tense", "calm", "happy"]
    model.save(tmp_path / "model.pt")
    raw = torch.load(tmp_path / "model.pt", weights_only=True)  # plain tensors and primitives
    assert raw["config"]["moods"] == ["calm", "happy", "tense"]
    loaded = CrossModalModel.load(tmp_path / "model.pt").eval()
    assert loaded.fingerprint() == model.fingerprint()
    assert loaded.predict_mood(emb) == ["tense", "calm", "happy"]
    video, audio = batch(model)
    with torch.no_grad():
        torch.testing.assert_close(loaded(video, audio), model(video, audio))
    with pytest.raises(ValueError, match=r"need \(moods, vibe_dim\) = \(2, 4\)"):
        model.set_moods(["a", "b"], torch.randn(2, 3))


def test_one_part_models_are_as_before_and_bad_values_are_refused() -> None:
    assert ModelConfig().vibe_dim == 0
    model = CrossModalModel.from_config(small_config())
    assert not hasattr(model, "vibe_heads")
    assert not model.layout.has_vibe
    assert model.predict_mood(torch.randn(1, 16)) is None
    with pytest.raises(ConfigError, match=r"model.blend must be in \(0, 1\)"):
        ModelConfig(vibe_dim=4, blend=1.0)
    with pytest.raises(ConfigError, match=r"model\.vibe_dim must be >= 0"):
        ModelConfig(vibe_dim=-1)
    with pytest.raises(ConfigError, match=r"model\.moods needs a vibe part"):
        ModelConfig(moods=["calm"])


def test_vibe_dropout_drops_the_vibe_heads_input_in_training_only() -> None:
    model = CrossModalModel.from_config(small_config(vibe_dim=8, vibe_dropout=0.5))
    _, audio = batch(model)
    with torch.no_grad():
        features = model.backbone("music", audio.clone()).detach()
        head = model.vibe_heads["music"]
        model.train()
        torch.manual_seed(3)
        trained = model.project("music", features)
        torch.manual_seed(3)
        mask_input = F.dropout(features, 0.5, training=True)  # the same draw, by hand
        sync, vibe = model.layout.split(trained)
        torch.testing.assert_close(vibe, F.normalize(head(mask_input), dim=-1))
        torch.testing.assert_close(sync, F.normalize(model.heads["music"](features), dim=-1))
        assert not torch.allclose(vibe, F.normalize(head(features), dim=-1))
        model.eval()  # no dropout at inference: the plain vibe head
        _, vibe_eval = model.layout.split(model.project("music", features))
        torch.testing.assert_close(vibe_eval, F.normalize(head(features), dim=-1))
    for bad in (-0.1, 1.0):
        with pytest.raises(ConfigError, match=r"model\.vibe_dropout must be in \[0, 1\)"):
            ModelConfig(vibe_dim=4, vibe_dropout=bad)


def test_vibe_input_clip_reads_each_towers_clip_view(tmp_path: Path) -> None:
    model = CrossModalModel.from_config(small_config(vibe_dim=8, vibe_input="clip")).eval()
    for modality in ("video", "music"):
        encoder = model.encoders[modality]
        assert model.vibe_heads[modality].in_features == encoder.clip_dim < encoder.output_dim
    video, audio = batch(model)
    with torch.no_grad():
        video_emb, music_emb = model(video, audio)
        for emb, modality, x in (
            (video_emb, "video", video),
            (music_emb, "music", audio),
        ):
            features = model.backbone(modality, x)
            clip = model.encoders[modality].clip_view(features)
            sync, vibe = model.layout.split(emb)
            torch.testing.assert_close(vibe, F.normalize(model.vibe_heads[modality](clip), dim=-1))
            torch.testing.assert_close(sync, F.normalize(model.heads[modality](features), dim=-1))
    model.save(tmp_path / "model.pt")
    loaded = CrossModalModel.load(tmp_path / "model.pt").eval()
    assert loaded.config.vibe_input == "clip"
    with torch.no_grad():
        torch.testing.assert_close(loaded(video, audio), model(video, audio))
    with pytest.raises(ConfigError, match=r"model\.vibe_input must be features or clip"):
        ModelConfig(vibe_dim=4, vibe_input="bins")  # type: ignore[arg-type]


def test_the_gate_records_its_quantile_and_a_bad_one_is_refused() -> None:
    from crossmodal.embedding_layout import GATE_QUANTILE

    model = CrossModalModel.from_config(small_config(vibe_dim=4))
    assert model.config.sync_gate_quantile is None  # no gate yet
    model.set_sync_gate(0.6)
    assert (model.config.sync_gate, model.config.sync_gate_quantile) == (0.6, GATE_QUANTILE)
    assert model.layout.gate_quantile == GATE_QUANTILE
    model.set_sync_gate(None)
    assert model.config.sync_gate_quantile is None
    # A file from before the quantile was recorded: its gate was calibrated at 0.99.
    assert ModelConfig(vibe_dim=4, blend=0.2, sync_gate=0.6).layout.gate_quantile == 0.99
    with pytest.raises(ConfigError, match=r"model\.sync_gate_quantile must be in \[0\.5, 1\)"):
        ModelConfig(vibe_dim=4, blend=0.2, sync_gate=0.6, sync_gate_quantile=1.0)


def test_a_one_part_model_ignores_the_vibe_fields_in_its_fingerprint() -> None:
    model = CrossModalModel.from_config(small_config())
    before = model.fingerprint()
    model.config.vibe_input = "clip"
    model.config.vibe_dropout = 0.5
    assert model.fingerprint() == before
