"""CrossModalModel: shapes, normalisation, logit scale, freezing, save/load, fingerprint."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from crossmodal.model import CheckpointError, CrossModalModel, ModelConfig

SMALL_VIDEO = {"num_frames": 8, "size": 16, "fps": 2.0, "num_bins": 4, "channels": [8, 8]}
SMALL_AUDIO = {
    "n_mels": 16,
    "seconds": 4.0,
    "hop_length": 1600,
    "num_bins": 4,
    "channels": [4, 4, 4],
}


def small_config(**changes: object) -> ModelConfig:
    base = ModelConfig(
        video_overrides=dict(SMALL_VIDEO), audio_overrides=dict(SMALL_AUDIO), embed_dim=16
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def batch(
    model: CrossModalModel, size: int = 4, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (
        model.video_encoder.example_input(size, generator=generator),
        model.audio_encoder.example_input(size, generator=generator),
    )


def test_forward_gives_unit_norm_embeddings_of_the_shared_width() -> None:
    model = CrossModalModel.from_config(small_config())
    video, audio = batch(model)
    video_emb, audio_emb = model(video, audio)
    assert video_emb.shape == audio_emb.shape == (4, 16)
    torch.testing.assert_close(video_emb.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(audio_emb.norm(dim=1), torch.ones(4))
    # forward is encode_video/encode_audio, and those are head ∘ backbone
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            model.encode_video(video), model.head_video(model.backbone_video(video))
        )
        expected = F.normalize(model.audio_head(model.audio_encoder(audio)), dim=-1)
        torch.testing.assert_close(model.encode_audio(audio), expected)


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_heads_have_the_documented_structure(head: str) -> None:
    model = CrossModalModel.from_config(small_config(head=head, head_hidden_dim=24))
    video_dim = model.video_encoder.output_dim
    if head == "linear":
        assert sum(p.numel() for p in model.video_head.parameters()) == video_dim * 16 + 16
    else:
        layers = [type(m).__name__ for m in model.video_head.net]
        assert layers == ["Linear", "LayerNorm", "GELU", "Dropout", "Linear"]
        assert model.video_head.net[0].weight.shape == (24, video_dim)


def test_logit_scale_starts_at_one_over_0_07_and_is_clamped_at_100() -> None:
    model = CrossModalModel.from_config(small_config())
    assert model.logit_scale().item() == pytest.approx(1 / 0.07, rel=1e-6)
    assert model.log_logit_scale.requires_grad
    with torch.no_grad():
        model.log_logit_scale.fill_(math.log(500.0))
    assert model.logit_scale().item() == pytest.approx(100.0, rel=1e-6)
    # past the clamp there is no gradient pushing it further
    model.logit_scale().backward()
    assert model.log_logit_scale.grad.item() == 0.0
    fixed = CrossModalModel.from_config(
        small_config(learn_logit_scale=False, logit_scale_init=10.0)
    )
    assert not fixed.log_logit_scale.requires_grad
    assert fixed.logit_scale().item() == pytest.approx(10.0, rel=1e-6)


def test_frozen_backbone_gets_no_gradients_and_keeps_its_batchnorm_statistics() -> None:
    model = CrossModalModel.from_config(small_config())
    model.freeze_backbones(video=True, audio=False)
    assert model.is_backbone_frozen("video")
    assert not model.is_backbone_frozen("audio")
    model.train()
    assert not model.video_encoder.training
    assert model.audio_encoder.training
    stats_before = {k: v.clone() for k, v in model.video_encoder.state_dict().items()}
    video, audio = batch(model)
    video_emb, audio_emb = model(video, audio)
    (model.logit_scale() * video_emb @ audio_emb.T).logsumexp(dim=1).mean().backward()
    assert all(p.grad is None for p in model.video_encoder.parameters())
    assert all(p.grad is not None for p in model.video_head.parameters())
    assert all(p.grad is not None for p in model.audio_encoder.parameters())
    for key, value in model.video_encoder.state_dict().items():
        torch.testing.assert_close(value, stats_before[key], msg=key)
    # frozen backbone features carry no graph: they can be cached and fed to the head
    assert not model.backbone_video(video).requires_grad
    model.unfreeze_backbones()
    assert not model.is_backbone_frozen("video")
    assert model.video_encoder.training
    assert all(p.requires_grad for p in model.video_encoder.parameters())


def test_freeze_from_config_and_is_recorded_when_saved(tmp_path: Path) -> None:
    model = CrossModalModel.from_config(small_config(freeze_audio_backbone=True))
    assert model.is_backbone_frozen("audio")
    assert not model.is_backbone_frozen("video")
    model.save(tmp_path / "m.pt")
    loaded = CrossModalModel.load(tmp_path / "m.pt")
    assert loaded.is_backbone_frozen("audio")
    assert not loaded.is_backbone_frozen("video")


def test_save_load_round_trip_gives_identical_embeddings(tmp_path: Path) -> None:
    model = CrossModalModel.from_config(small_config())
    # train a step so weights and BatchNorm statistics differ from a fresh build
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    video, audio = batch(model, seed=1)
    video_emb, audio_emb = model(video, audio)
    (1 - (video_emb * audio_emb).sum(dim=1)).mean().backward()
    optimizer.step()
    model.eval()
    path = tmp_path / "sub" / "model.pt"
    model.save(path)
    assert path.is_file()
    assert not list(path.parent.glob("*.tmp"))
    loaded = CrossModalModel.load(path).eval()
    assert loaded.config == model.config
    video, audio = batch(model, seed=2)
    with torch.no_grad():
        assert torch.equal(loaded.encode_video(video), model.encode_video(video))
        assert torch.equal(loaded.encode_audio(audio), model.encode_audio(audio))
    assert loaded.logit_scale().item() == model.logit_scale().item()
    assert loaded.fingerprint() == model.fingerprint()
    # the file holds primitives and tensors only: a weights_only load reads it
    payload = torch.load(path, weights_only=True)
    assert payload["config"]["video_encoder"] == "video_tiny"


def test_fingerprint_follows_weights_and_architecture_not_freezing() -> None:
    torch.manual_seed(0)
    a = CrossModalModel.from_config(small_config())
    torch.manual_seed(0)
    b = CrossModalModel.from_config(small_config())
    assert a.fingerprint() == b.fingerprint()
    assert len(a.fingerprint()) == 64
    b.freeze_backbones()
    assert a.fingerprint() == b.fingerprint()
    with torch.no_grad():
        next(b.audio_head.parameters()).view(-1)[0] += 1e-6
    assert a.fingerprint() != b.fingerprint()
    torch.manual_seed(0)
    c = CrossModalModel.from_config(small_config(head_dropout=0.1))
    assert a.fingerprint() != c.fingerprint()


def test_failed_save_leaves_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = CrossModalModel.from_config(small_config())
    path = tmp_path / "model.pt"
    model.save(path)
    before = path.read_bytes()

    def broken_save(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_load_rejects_files_that_are_not_models(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        CrossModalModel.load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="cannot read"):
        CrossModalModel.load(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a crossmodal model file"):
        CrossModalModel.load(tmp_path / "other.pt")
    model = CrossModalModel.from_config(small_config())
    model.save(tmp_path / "m.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    payload["config"]["embed_dim"] = 32
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not fit its config"):
        CrossModalModel.load(tmp_path / "mismatch.pt")


def test_config_round_trips_through_a_plain_dict_and_rejects_unknown_keys() -> None:
    config = small_config(head="linear")
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(Exception, match="embedding_dim"):
        ModelConfig.from_dict({"embedding_dim": 3})


def test_wrong_modalities_are_refused() -> None:
    from crossmodal.errors import CrossmodalError

    config = ModelConfig(
        video_encoder="audio_tiny", video_overrides={}, audio_overrides=dict(SMALL_AUDIO)
    )
    with pytest.raises(CrossmodalError, match="video_encoder must name a video encoder"):
        CrossModalModel.from_config(config)
