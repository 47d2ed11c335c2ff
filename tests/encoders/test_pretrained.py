"""pretrained=: local files and folders load, hub names fail fast offline."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from crossmodal.encoders import (
    PretrainedError,
    PretrainedUnavailableError,
    create_encoder,
)
from crossmodal.encoders.pretrained import classify
from tests.encoders.small import SMALL, TRANSFORMERS


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No network and empty caches, whatever machine the tests run on."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)


def _scramble(module: torch.nn.Module) -> None:
    # weights a fresh build cannot have, so a round trip that ignored them would fail
    generator = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_transformers_encoder_round_trips_through_save_pretrained(
    name: str, tmp_path: Path
) -> None:
    original = create_encoder(name, **SMALL[name])
    _scramble(original)
    original.eval()
    original.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "config.json").is_file()
    # options outside the transformers config (frame count, pooling) are passed again;
    # the config fields among them agree with the saved config, which is allowed
    loaded = create_encoder(name, pretrained=tmp_path / "saved", **SMALL[name]).eval()
    assert loaded.input_shape == original.input_shape
    batch = original.example_input(2)
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch), original(batch))
    # the architecture is recorded, so a model file can rebuild it without the folder
    rebuilt = create_encoder(name, **loaded.init_kwargs)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in loaded.state_dict().items()
    }


def test_overrides_that_contradict_a_pretrained_config_are_refused(tmp_path: Path) -> None:
    create_encoder("videomae", **SMALL["videomae"]).save_pretrained(tmp_path)
    with pytest.raises(PretrainedError, match=r"hidden_size=64 \(weights have 32\)"):
        create_encoder("videomae", pretrained=tmp_path, hidden_size=64)
    # agreeing overrides are fine
    create_encoder("videomae", pretrained=tmp_path, hidden_size=32)


@pytest.mark.parametrize(
    ("name", "hub_name"),
    [
        ("videomae", "MCG-NJU/videomae-base"),
        ("clip_frames", "openai/clip-vit-base-patch32"),
        ("ast", "MIT/ast-finetuned-audioset-10-10-0.4593"),
        ("wav2vec2", "facebook/wav2vec2-base"),
        ("hubert", "facebook/hubert-base-ls960"),
        ("resnet18", "IMAGENET1K_V1"),
        ("r3d_18", "KINETICS400_V1"),
    ],
)
@pytest.mark.usefixtures("offline")
def test_hub_name_offline_fails_fast_saying_how_to_pass_a_local_path(
    name: str, hub_name: str
) -> None:
    start = time.perf_counter()
    with pytest.raises(PretrainedUnavailableError) as info:
        create_encoder(name, pretrained=hub_name, **SMALL[name])
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert hub_name in message
    assert "no network access" in message
    assert "pretrained='/path/to/folder'" in message
    assert "pretrained='/path/to/weights.pth'" in message


@pytest.mark.usefixtures("offline")
def test_unknown_torchvision_weights_name_lists_the_known_ones() -> None:
    with pytest.raises(
        PretrainedError, match=r"no torchvision weights named 'IMAGENET9K'.*IMAGENET1K_V1"
    ):
        create_encoder("resnet18", pretrained="IMAGENET9K", **SMALL["resnet18"])


def test_torchvision_state_dict_file_loads_into_the_frame_backbone(tmp_path: Path) -> None:
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    _scramble(reference)
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    encoder = create_encoder(
        "resnet18", pretrained=tmp_path / "resnet18.pth", **SMALL["resnet18"]
    ).eval()
    reference.fc = torch.nn.Identity()
    reference.eval()
    video = encoder.example_input(2)
    frames = video.transpose(1, 2).reshape(-1, *video.shape[1:2], *video.shape[3:])
    with torch.no_grad():
        expected = reference(frames).reshape(2, -1, 512).mean(dim=1)
        torch.testing.assert_close(encoder(video), expected)


def test_checkpoint_wrapped_under_state_dict_is_unwrapped(tmp_path: Path) -> None:
    import torchvision

    reference = torchvision.models.mobilenet_v3_small(weights=None)
    torch.save({"state_dict": reference.state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    encoder = create_encoder(
        "mobilenet_v3_small", pretrained=tmp_path / "ckpt.pt", **SMALL["mobilenet_v3_small"]
    )
    torch.testing.assert_close(
        encoder.backbone.features[0][0].weight, reference.features[0][0].weight
    )


def test_weights_of_another_architecture_are_a_clear_error(tmp_path: Path) -> None:
    import torchvision

    torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), tmp_path / "w.pth")
    with pytest.raises(PretrainedError, match=r"do not fit ResNet \(missing: .*unexpected: "):
        create_encoder("resnet18", pretrained=tmp_path / "w.pth", **SMALL["resnet18"])


def test_own_state_dict_file_loads_into_encoders_without_published_weights(tmp_path: Path) -> None:
    original = create_encoder("audio_tiny")
    _scramble(original)
    torch.save(original.state_dict(), tmp_path / "audio_tiny.pt")
    loaded = create_encoder("audio_tiny", pretrained=str(tmp_path / "audio_tiny.pt"))
    for key, value in original.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    with pytest.raises(PretrainedError, match="has no published weights"):
        create_encoder("video_tiny", pretrained="imagenet")


def test_pickled_objects_are_not_loaded(tmp_path: Path) -> None:
    from fractions import Fraction

    # any class outside torch's weights-only allow-list stands for a malicious payload
    torch.save({"fc.weight": torch.zeros(1), "x": Fraction(1, 3)}, tmp_path / "evil.pth")
    with pytest.raises(PretrainedError, match="weights_only=True"):
        create_encoder("resnet18", pretrained=tmp_path / "evil.pth", **SMALL["resnet18"])


def test_paths_and_names_are_told_apart(tmp_path: Path) -> None:
    (tmp_path / "w.pth").write_bytes(b"")
    assert classify(tmp_path / "w.pth") == ("file", str(tmp_path / "w.pth"))
    assert classify(tmp_path) == ("dir", str(tmp_path))
    assert classify("MCG-NJU/videomae-base") == ("name", "MCG-NJU/videomae-base")
    for missing in (str(tmp_path / "nope"), "./weights.pth", "~/nothing/here", "model.safetensors"):
        with pytest.raises(PretrainedError, match="not found"):
            classify(missing)


def test_file_and_folder_kinds_are_checked(tmp_path: Path) -> None:
    (tmp_path / "w.pth").write_bytes(b"")
    with pytest.raises(PretrainedError, match="not a file"):
        create_encoder("videomae", pretrained=tmp_path / "w.pth", **SMALL["videomae"])
    with pytest.raises(PretrainedError, match="not a folder"):
        create_encoder("resnet18", pretrained=tmp_path, **SMALL["resnet18"])
    with pytest.raises(PretrainedError, match="cannot load VideoMAEModel"):
        create_encoder("videomae", pretrained=tmp_path, **SMALL["videomae"])


def test_without_offline_variables_an_unreachable_hub_is_detected_quickly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import socket

    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "CROSSMODAL_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    probes: list[tuple[str, int]] = []

    def unreachable(address: tuple[str, int], timeout: float) -> None:
        probes.append(address)
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    with pytest.raises(PretrainedUnavailableError, match="no network access"):
        create_encoder("videomae", pretrained="MCG-NJU/videomae-base")
    assert probes == [("huggingface.co", 443)]
