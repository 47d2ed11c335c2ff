"""CrossModalModel: shapes, normalisation, freezing, save/load (and files of earlier
versions), fingerprint."""

from __future__ import annotations

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
        video_overrides=dict(SMALL_VIDEO), music_overrides=dict(SMALL_AUDIO), embed_dim=16
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def batch(
    model: CrossModalModel, size: int = 4, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (
        model.encoders["video"].example_input(size, generator=generator),
        model.encoders["music"].example_input(size, generator=generator),
    )


def test_forward_gives_unit_norm_embeddings_of_the_shared_width() -> None:
    model = CrossModalModel.from_config(small_config())
    video, audio = batch(model)
    video_emb, audio_emb = model(video, audio)
    assert video_emb.shape == audio_emb.shape == (4, 16)
    torch.testing.assert_close(video_emb.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(audio_emb.norm(dim=1), torch.ones(4))
    # forward is encode per modality, and that is project ∘ backbone
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            model.encode("video", video), model.project("video", model.backbone("video", video))
        )
        expected = F.normalize(model.heads["music"](model.encoders["music"](audio)), dim=-1)
        torch.testing.assert_close(model.encode("music", audio), expected)
        features = (model.backbone("video", video), model.backbone("music", audio))
        from_features = model(*features, from_features=True)
        torch.testing.assert_close(from_features[0], model.encode("video", video))
        torch.testing.assert_close(from_features[1], expected)


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_heads_have_the_documented_structure(head: str) -> None:
    model = CrossModalModel.from_config(small_config(head=head, head_hidden_dim=24))
    video_dim = model.encoders["video"].output_dim
    if head == "linear":
        assert sum(p.numel() for p in model.heads["video"].parameters()) == video_dim * 16 + 16
    else:
        layers = [type(m).__name__ for m in model.heads["video"].net]
        assert layers == ["Linear", "LayerNorm", "GELU", "Dropout", "Linear"]
        assert model.heads["video"].net[0].weight.shape == (24, video_dim)


def test_frozen_backbone_gets_no_gradients_and_keeps_its_batchnorm_statistics() -> None:
    model = CrossModalModel.from_config(small_config())
    model.freeze_backbones(["video"])
    assert model.is_backbone_frozen("video")
    assert not model.is_backbone_frozen("music")
    model.train()
    assert not model.encoders["video"].training
    assert model.encoders["music"].training
    stats_before = {k: v.clone() for k, v in model.encoders["video"].state_dict().items()}
    video, audio = batch(model)
    video_emb, audio_emb = model(video, audio)
    (video_emb @ audio_emb.T / 0.07).logsumexp(dim=1).mean().backward()
    assert all(p.grad is None for p in model.encoders["video"].parameters())
    assert all(p.grad is not None for p in model.heads["video"].parameters())
    assert all(p.grad is not None for p in model.encoders["music"].parameters())
    for key, value in model.encoders["video"].state_dict().items():
        torch.testing.assert_close(value, stats_before[key], msg=key)
    # frozen backbone features carry no graph: they can be cached and fed to the head
    assert not model.backbone("video", video).requires_grad
    model.unfreeze_backbones()
    assert not model.is_backbone_frozen("video")
    assert model.encoders["video"].training
    assert all(p.requires_grad for p in model.encoders["video"].parameters())
    with pytest.raises(ValueError, match="modality must be one of video, music, got 'audio'"):
        model.freeze_backbones(["audio"])


def test_freeze_from_config_and_is_recorded_when_saved(tmp_path: Path) -> None:
    model = CrossModalModel.from_config(small_config(freeze_music_backbone=True))
    assert model.is_backbone_frozen("music")
    assert not model.is_backbone_frozen("video")
    model.save(tmp_path / "m.pt")
    loaded = CrossModalModel.load(tmp_path / "m.pt")
    assert loaded.is_backbone_frozen("music")
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
        assert torch.equal(loaded.encode("video", video), model.encode("video", video))
        assert torch.equal(loaded.encode("music", audio), model.encode("music", audio))
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
        next(b.heads["music"].parameters()).view(-1)[0] += 1e-6
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
        video_encoder="audio_tiny", video_overrides={}, music_overrides=dict(SMALL_AUDIO)
    )
    with pytest.raises(CrossmodalError, match="video_encoder must name a video encoder"):
        CrossModalModel.from_config(config)


LEGACY = Path(__file__).parent / "fixtures" / "legacy_model"


@pytest.mark.parametrize("name", ["model.pt", "last.pt"])
def test_files_written_before_the_music_rename_load_and_embed_the_same(name: str) -> None:
    # written by main's code before the towers were keyed by modality and the logit
    # scale moved to the loss (tests/fixtures/legacy_model/README.md)
    reference = torch.load(LEGACY / "embeddings.pt", weights_only=True)
    model = CrossModalModel.load(LEGACY / name).eval()
    assert model.config.music_encoder == "audio_tiny"
    assert model.config.music_overrides["n_mels"] == 8
    assert model.is_backbone_frozen("music")
    assert not model.is_backbone_frozen("video")
    with torch.no_grad():
        video_emb, music_emb = model(reference["video"], reference["audio"])
    torch.testing.assert_close(video_emb, reference["video_emb"], rtol=0, atol=1e-6)
    torch.testing.assert_close(music_emb, reference["music_emb"], rtol=0, atol=1e-6)
    # an index built then knows the model by its old fingerprint
    assert model.legacy_fingerprint == reference["fingerprint"]
    assert model.fingerprint() != reference["fingerprint"]


def test_a_legacy_model_saved_again_is_written_in_todays_names(tmp_path: Path) -> None:
    CrossModalModel.load(LEGACY / "model.pt").save(tmp_path / "m.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    assert payload["format_version"] == 2
    assert "music_encoder" in payload["config"]
    assert "audio_encoder" not in payload["config"]
    assert "log_logit_scale" not in payload["state_dict"]
    assert any(k.startswith("encoders.music.") for k in payload["state_dict"])
    assert CrossModalModel.load(tmp_path / "m.pt").legacy_fingerprint is None


def test_config_with_the_former_audio_names_loads_and_both_names_is_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = ModelConfig.from_dict(
        {"audio_encoder": "logmel_cnn", "freeze_audio_backbone": True, "logit_scale_init": 20.0}
    )
    assert config.music_encoder == "logmel_cnn"
    assert config.freeze_music_backbone
    # the retired logit scale settings: a warning only when one was set to a new value
    assert "ignoring logit_scale_init: the learnable temperature belongs to" in caplog.text
    caplog.clear()
    ModelConfig.from_dict({"logit_scale_init": 1 / 0.07, "learn_logit_scale": True})
    assert caplog.text == ""
    with pytest.raises(ValueError, match="audio_encoder is the former name of music_encoder"):
        ModelConfig.from_dict({"audio_encoder": "logmel_cnn", "music_encoder": "audio_tiny"})


def test_yaml_and_overrides_with_the_former_audio_names_still_configure_the_music_tower(
    tmp_path: Path,
) -> None:
    from crossmodal.config import load_config
    from crossmodal.training.config import TrainConfig

    (tmp_path / "old.yaml").write_text(
        "model:\n  audio_encoder: logmel_cnn\n  logit_scale_init: 20.0\n"
    )
    cfg = load_config(
        TrainConfig,
        tmp_path / "old.yaml",
        ["--model.audio_overrides", '{"seconds": 1.0}', "--freeze_audio_backbone"],
    )
    assert cfg.model.music_encoder == "logmel_cnn"
    assert cfg.model.music_overrides == {"seconds": 1.0}
    assert cfg.model.freeze_music_backbone
    assert load_config(TrainConfig).model.music_encoder == "audio_tiny"


def test_the_sync_gate_leaves_the_fingerprint_as_files_before_it_had_it() -> None:
    # An index stores its model's fingerprint: a file written before the gate existed (its
    # config has no sync_gate key) must keep the fingerprint it was indexed under.
    import hashlib
    import json

    torch.manual_seed(0)
    model = CrossModalModel.from_config(small_config(vibe_dim=4, blend=0.3))
    old_config = {
        k: v
        for k, v in model.config.to_dict().items()
        # Fields files written before them do not have: the gate (and its quantile),
        # the vibe heads' input and dropout (at the values that compute as before).
        if k
        not in (
            "sync_gate",
            "sync_gate_quantile",
            "vibe_input",
            "vibe_dropout",
            "freeze_video_backbone",
            "freeze_music_backbone",
        )
        and not k.endswith("_pretrained")
    }
    digest = hashlib.sha256(json.dumps(old_config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    assert model.fingerprint() == digest.hexdigest()
    model.set_sync_gate(0.4)  # scoring, not embedding: same fingerprint
    assert model.fingerprint() == digest.hexdigest()
    model.set_sync_gate(0.4, quantile=0.9)
    assert model.fingerprint() == digest.hexdigest()
    model.config.vibe_dropout = 0.5  # training only
    assert model.fingerprint() == digest.hexdigest()
    model.config.vibe_input = "clip"  # what the vibe heads read: another model
    assert model.fingerprint() != digest.hexdigest()
