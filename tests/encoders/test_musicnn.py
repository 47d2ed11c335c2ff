"""The musicnn port against the original TensorFlow models and librosa.

``fixtures/musicnn_reference.npz`` holds what the ORIGINAL graph (the musicnn 0.1.0
wheel's own model code under TensorFlow 2.15 ``tf.compat.v1``) computed for the clips of
``tools/musicnn_clips.py``: the float16 mel power it feeds its log, and per window the tag
probabilities and the penultimate layer. ``tools/musicnn_reference.py`` wrote it.
"""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from crossmodal.encoders import EncoderInputError, PretrainedError, create_encoder
from crossmodal.encoders.music import musicnn as musicnn_module
from crossmodal.encoders.music.musicnn import (
    HOP,
    N_FFT,
    N_MELS,
    SAMPLE_RATE,
    WINDOW_FRAMES,
    WINDOW_SAMPLES,
    MusicnnEncoder,
)
from tools.musicnn_clips import make_clip

FIXTURE = Path(__file__).with_name("fixtures") / "musicnn_reference.npz"
SHIPPED = ("musicnn_msd", "musicnn_mtt")


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return dict(data)


def reference_logmel(reference: dict[str, np.ndarray]) -> torch.Tensor:
    """The original's model input, (N, 96, 187): log10(10000 x + 1) of its float16 power."""
    power = reference["mel_power_float16"].astype(np.float32)
    return torch.from_numpy(np.log10(10000 * power + 1)).transpose(1, 2)


def checkpoint_key(name: str) -> str:
    encoder_dataset = name.rsplit("_", 1)[1].upper()
    return f"{encoder_dataset}_{'vgg' if '_vgg_' in name else 'musicnn'}"


@pytest.fixture(scope="module", params=SHIPPED)
def shipped(request: pytest.FixtureRequest) -> MusicnnEncoder:
    name = request.param
    return create_encoder(name, pretrained=name.rsplit("_", 1)[1]).eval()


def test_tag_probabilities_match_the_original_graph(
    shipped: MusicnnEncoder, reference: dict[str, np.ndarray]
) -> None:
    key = checkpoint_key(shipped.name)
    with torch.no_grad():
        logits, embedding = shipped.outputs(reference_logmel(reference))
    expected = torch.from_numpy(reference[f"{key}/probabilities"])
    torch.testing.assert_close(torch.sigmoid(logits), expected, rtol=0, atol=1e-4)
    features = torch.from_numpy(reference[f"{key}/features"])
    torch.testing.assert_close(embedding, features, rtol=1e-4, atol=1e-4)
    # the fixture is not degenerate: tags differ between clips and some are confident
    assert expected.std(dim=0).max() > 0.05
    assert expected.max() > 0.5


def test_waveform_to_tags_matches_the_original_end_to_end(
    shipped: MusicnnEncoder, reference: dict[str, np.ndarray]
) -> None:
    windows = torch.cat(
        [
            shipped.track_windows(torch.from_numpy(make_clip(str(n))))
            for n in reference["clip_names"]
        ]
    )
    with torch.no_grad():
        probabilities = torch.sigmoid(shipped.outputs(windows)[0])
    expected = torch.from_numpy(reference[f"{checkpoint_key(shipped.name)}/probabilities"])
    torch.testing.assert_close(probabilities, expected, rtol=0, atol=1e-4)


def test_front_end_matches_the_original_spectrogram(reference: dict[str, np.ndarray]) -> None:
    encoder = MusicnnEncoder()
    ours = torch.cat(
        [
            encoder.track_windows(torch.from_numpy(make_clip(str(n))))
            for n in reference["clip_names"]
        ]
    )
    expected = reference_logmel(reference)
    assert ours.shape == expected.shape == (len(reference["window_clip"]), N_MELS, WINDOW_FRAMES)
    diff = (ours - expected).abs()
    # Both round the power to float16; FFT rounding flips a rare value by one float16 step
    # (a relative 2**-11 of the power, < 5e-4 after the log).
    assert (diff > 1e-5).float().mean() < 0.01
    assert diff.max() < 5e-4


def test_front_end_is_librosa_mel_then_float16_log() -> None:
    """An independent recomputation with librosa (reflected edges, as librosa 0.7 did)."""
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32)
    power = librosa.feature.melspectrogram(
        y=audio, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, pad_mode="reflect"
    )
    expected = np.log10(10000 * power.astype(np.float16).astype(np.float32) + 1)
    ours = musicnn_module.MusicnnLogMel()(torch.from_numpy(audio)[None])[0].numpy()
    assert ours.shape == expected.shape
    assert np.mean(np.abs(ours - expected) > 1e-5) < 0.01
    assert np.abs(ours - expected).max() < 5e-4


def test_power_beyond_float16_saturates_instead_of_overflowing() -> None:
    encoder = create_encoder("musicnn_msd", pretrained="msd").eval()
    loud = 50.0 * torch.sin(2 * torch.pi * 60.0 * torch.arange(WINDOW_SAMPLES) / SAMPLE_RATE)
    logmel = encoder.precompute(loud[None])
    assert torch.isfinite(logmel).all()
    assert logmel.max() == pytest.approx(np.log10(10000 * 65504.0 + 1), rel=1e-6)
    with torch.no_grad():
        assert torch.isfinite(encoder.tag_probabilities(loud[None])).all()


def test_encoder_contract(shipped: MusicnnEncoder) -> None:
    assert shipped.output_dim == 200
    assert len(shipped.tag_names) == 50 == len(set(shipped.tag_names))
    assert shipped.input_shape == (WINDOW_SAMPLES,)
    assert shipped.audio_spec.num_mel_frames == WINDOW_FRAMES
    audio = shipped.example_input(3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        embedding = shipped(audio)
        probabilities = shipped.tag_probabilities(audio)
        split = shipped.embed_precomputed(shipped.precompute(audio))
    assert embedding.shape == (3, 200)
    torch.testing.assert_close(split, embedding)
    assert probabilities.shape == (3, 50)
    assert ((probabilities > 0) & (probabilities < 1)).all()
    with pytest.raises(EncoderInputError, match=r"takes \(B, 47616\)"):
        shipped(audio[:, :-1])


def test_tag_names_follow_the_dataset() -> None:
    msd = create_encoder("musicnn_msd")
    mtt = create_encoder("musicnn_mtt")
    assert {"happy", "sad", "chill", "Mellow", "party"} <= set(msd.tag_names)
    assert {"slow", "fast", "soft", "loud", "ambient"} <= set(mtt.tag_names)


def test_musicnn_pools_over_any_length_vgg_only_187(reference: dict[str, np.ndarray]) -> None:
    logmel = reference_logmel(reference)[:2]
    musicnn = MusicnnEncoder().eval()
    with torch.no_grad():
        logits, embedding = musicnn.outputs(logmel[:, :, :100])
    assert logits.shape == (2, 50)
    assert embedding.shape == (2, 200)
    vgg = MusicnnEncoder(architecture="vgg").eval()
    assert vgg.output_dim == 256
    with torch.no_grad():
        assert vgg.outputs(logmel)[1].shape == (2, 256)
    with pytest.raises(EncoderInputError, match="windows of 187 frames"):
        vgg.outputs(logmel[:, :, :100])
    with pytest.raises(EncoderInputError, match=r"log-mel \(B, 96, frames\)"):
        musicnn.outputs(logmel[:, :50])


def test_track_windows_cut_like_the_original() -> None:
    encoder = MusicnnEncoder()
    track = torch.from_numpy(make_clip("chord"))
    windows = encoder.track_windows(track)
    frames = track.numel() // HOP + 1
    assert windows.shape == (frames // WINDOW_FRAMES, N_MELS, WINDOW_FRAMES)
    whole = encoder.frontend(track[None])[0]
    torch.testing.assert_close(windows[1], whole[:, WINDOW_FRAMES : 2 * WINDOW_FRAMES])
    # a short track is repeated to fill one window
    short = track[:4000]
    (window,) = encoder.track_windows(short)
    repeated = short.repeat(12)[:WINDOW_SAMPLES]
    torch.testing.assert_close(window, encoder.frontend(repeated[None])[0])
    with pytest.raises(EncoderInputError, match="non-empty mono"):
        encoder.track_windows(torch.zeros(0))
    with pytest.raises(EncoderInputError, match="non-empty mono"):
        encoder.track_windows(torch.zeros(2, 100))


def test_shipped_weights_load_offline_and_differ_from_random() -> None:
    pretrained = create_encoder("musicnn_msd", pretrained="msd")
    random = create_encoder("musicnn_msd")
    key = "net.classifier.weight"
    assert not torch.equal(pretrained.state_dict()[key], random.state_dict()[key])


def test_pretrained_errors_say_what_to_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(PretrainedError, match=r"trained on 'msd'.*pretrained='msd'"):
        create_encoder("musicnn_msd", pretrained="mtt")
    with pytest.raises(PretrainedError, match="not found"):
        create_encoder("musicnn_mtt", pretrained=str(tmp_path / "missing.safetensors"))
    monkeypatch.setattr(musicnn_module, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(PretrainedError, match=r"python -m tools\.musicnn_convert"):
        create_encoder("musicnn_vgg_msd", pretrained="msd")


def test_own_state_dict_file_round_trips(tmp_path: Path) -> None:
    first = create_encoder("musicnn_mtt", pretrained="mtt").eval()
    path = tmp_path / "musicnn.pt"
    torch.save(first.state_dict(), path)
    second = create_encoder("musicnn_mtt", pretrained=str(path)).eval()
    audio = first.example_input(1)
    with torch.no_grad():
        torch.testing.assert_close(first.tag_probabilities(audio), second.tag_probabilities(audio))
