"""Every registered encoder builds with random weights and maps its declared input to
(B, D); the registry rebuilds encoders from ``init_kwargs`` and rejects bad names."""

from __future__ import annotations

import pytest
import torch

from crossmodal.encoders import (
    EncoderInputError,
    MusicEncoder,
    VideoEncoder,
    create_encoder,
    get_entry,
    list_encoders,
)
from crossmodal.errors import CrossmodalError
from crossmodal.registry import UnknownNameError
from tests.encoders.small import HEAVY, SMALL


def _params(names: list[str]) -> list:
    return [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in names]


EXPECTED = {
    "video": {
        "video_tiny",
        "resnet18",
        "resnet34",
        "resnet50",
        "mobilenet_v3_small",
        "mobilenet_v3_large",
        "efficientnet_b0",
        "efficientnet_lite0",
        "r3d_18",
        "mc3_18",
        "r2plus1d_18",
        "s3d",
        "mvit_v2_s",
        "swin3d_t",
        "videomae",
        "clip_frames",
    },
    "music": {
        "audio_tiny",
        "logmel_cnn",
        "ast",
        "wav2vec2",
        "hubert",
        "descriptors",
        "musicnn_msd",
        "musicnn_mtt",
        "musicnn_vgg_msd",
        "musicnn_vgg_mtt",
    },
}


def test_registry_lists_every_family_by_modality() -> None:
    assert set(list_encoders("video")) == EXPECTED["video"]
    assert set(list_encoders("music")) == EXPECTED["music"]
    assert list_encoders() == sorted(EXPECTED["video"] | EXPECTED["music"])
    # the test overrides cover the whole registry, so nothing escapes the next test
    assert set(SMALL) == set(list_encoders())


@pytest.mark.parametrize("name", _params(sorted(SMALL)))
def test_encoder_maps_declared_input_to_batch_of_vectors(name: str) -> None:
    encoder = create_encoder(name, **SMALL[name]).eval()
    entry = get_entry(name)
    assert encoder.modality == entry.meta["modality"]
    assert encoder.name == name
    if entry.meta["modality"] == "video":
        assert isinstance(encoder, VideoEncoder)
        spec = encoder.video_spec
        assert encoder.input_shape == (3, spec.num_frames, spec.height, spec.width)
    else:
        assert isinstance(encoder, MusicEncoder)
        spec = encoder.audio_spec
        expected = (
            (spec.num_samples,)
            if spec.representation == "waveform"
            else (spec.n_mels, spec.num_mel_frames)
        )
        assert encoder.input_shape == expected
    generator = torch.Generator().manual_seed(0)
    batch = encoder.example_input(3, generator=generator)
    assert batch.shape == (3, *encoder.input_shape)
    with torch.no_grad():
        out = encoder(batch)
    assert out.shape == (3, encoder.output_dim)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    # different clips give different vectors (relative to the output's scale, which some
    # random inits make tiny): the encoder looks at its input
    scale = out.norm(dim=1).max()
    assert scale > 0
    assert (out[0] - out[1]).norm() > 1e-3 * scale
    # one clip alone gives the same vector as inside the batch (eval mode: no batch coupling)
    with torch.no_grad():
        alone = encoder(batch[:1])
    assert (alone[0] - out[0]).norm() <= 1e-4 * scale


# one encoder of each class: the check lives in the base classes and each forward
@pytest.mark.parametrize(
    "name",
    [
        "video_tiny",
        "resnet18",
        "r3d_18",
        "videomae",
        "clip_frames",
        "audio_tiny",
        "logmel_cnn",
        "ast",
        "wav2vec2",
        "descriptors",
    ],
)
def test_wrong_input_shape_is_a_clear_error(name: str) -> None:
    encoder = create_encoder(name, **SMALL[name])
    good = encoder.example_input(2)
    bad = good[..., :-1]
    with pytest.raises(EncoderInputError, match=r"takes \(B, .*got \(2, "):
        encoder(bad)
    with pytest.raises(EncoderInputError, match="float"):
        encoder(good.to(torch.int64))


@pytest.mark.parametrize(
    "name", ["video_tiny", "audio_tiny", "logmel_cnn", "videomae", "ast", "wav2vec2", "resnet18"]
)
def test_rebuild_from_init_kwargs_gives_same_architecture(name: str) -> None:
    first = create_encoder(name, **SMALL[name])
    second = create_encoder(name, **first.init_kwargs)
    assert first.input_shape == second.input_shape
    assert first.output_dim == second.output_dim
    shapes = {k: v.shape for k, v in first.state_dict().items()}
    assert shapes == {k: v.shape for k, v in second.state_dict().items()}
    second.load_state_dict(first.state_dict())
    first.eval()
    second.eval()
    batch = first.example_input(2)
    with torch.no_grad():
        torch.testing.assert_close(first(batch), second(batch))


@pytest.mark.parametrize(
    "name", ["video_tiny", "audio_tiny", "logmel_cnn", "clip_frames", "hubert"]
)
def test_training_step_reaches_every_parameter(name: str) -> None:
    encoder = create_encoder(name, **SMALL[name]).train()
    out = encoder(encoder.example_input(4))
    (out * torch.randn_like(out)).sum().backward()
    without = [n for n, p in encoder.named_parameters() if p.requires_grad and p.grad is None]
    # HuBERT's masked-prediction embedding is only used for SpecAugment-style masking.
    without = [n for n in without if not n.endswith("masked_spec_embed")]
    assert without == []


def test_unknown_name_suggests_close_ones() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown encoder 'resnet81'.*'resnet18'"):
        create_encoder("resnet81")


def test_unknown_option_names_the_valid_ones() -> None:
    with pytest.raises(CrossmodalError, match=r"no option 'frames'.*num_frames"):
        create_encoder("video_tiny", frames=8)
    with pytest.raises(CrossmodalError, match=r"VideoMAEConfig has no field 'hiden_size'"):
        create_encoder("videomae", hiden_size=32)


def test_tiny_towers_cover_the_same_window() -> None:
    video = create_encoder("video_tiny")
    audio = create_encoder("audio_tiny")
    assert video.video_spec.fps is not None
    assert video.video_spec.num_frames / video.video_spec.fps == audio.audio_spec.seconds


def test_register_encoder_checks_modality_and_who_loads_the_weights() -> None:
    from crossmodal.encoders import MusicEncoder as Base
    from crossmodal.encoders import register_encoder

    def builder(*, pretrained: str | None = None) -> Base:
        raise AssertionError("never built")

    with pytest.raises(ValueError, match="modality must be one of video, music, got 'audio'"):
        register_encoder("x_audio", builder, modality="audio", description="")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="builds_from_pretrained=True"):
        register_encoder("x_ctor_weights", builder, modality="music", description="")
    assert "x_audio" not in list_encoders()
    assert "x_ctor_weights" not in list_encoders()
