"""librosa descriptors, the numpy beat tracker, and the descriptor encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossmodal.encoders import create_encoder
from crossmodal.encoders.music.beats import track_beats
from crossmodal.encoders.music.descriptors import compute_descriptors, descriptor_names

SR = 16000
HOP = 512


def click_track(
    bpm: float, seconds: float = 4.0, start: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """1 kHz clicks (5 ms decay) every 60/bpm s from ``start``; returns (audio, click times)."""
    y = np.zeros(round(seconds * SR), dtype=np.float32)
    times = np.arange(start, seconds - 0.05, 60.0 / bpm)
    burst = np.exp(-np.arange(400) / 80.0) * np.sin(2 * np.pi * 1000 * np.arange(400) / SR)
    for t in times:
        i = round(t * SR)
        y[i : i + 400] += burst[: len(y[i : i + 400])].astype(np.float32)
    return y, times


def test_beat_tracker_follows_an_impulse_train_and_skips_gaps() -> None:
    envelope = np.zeros(200)
    beats = np.arange(7, 200, 16)
    envelope[beats] = 1.0
    envelope[beats[5]] = 0.0  # a missing onset: the tracker keeps the pulse going
    envelope += 0.01 * np.random.default_rng(0).random(200)
    found = track_beats(envelope, frames_per_beat=16.0)
    np.testing.assert_array_equal(found, beats)
    assert track_beats(np.zeros(50), 10.0).size == 0
    with pytest.raises(ValueError, match="positive"):
        track_beats(envelope, 0.0)


@pytest.mark.slow
@pytest.mark.parametrize("bpm", [90.0, 120.0, 140.0])
def test_tempo_and_beats_of_a_click_track(bpm: float) -> None:
    y, times = click_track(bpm)
    names = descriptor_names()
    d = compute_descriptors(y, SR, hop_length=HOP)
    assert d.shape == (len(names), 1 + len(y) // HOP)
    assert d.dtype == np.float32
    tempo = d[names.index("tempo")]
    assert np.all(tempo == tempo[0])
    assert tempo[0] * 120 == pytest.approx(bpm, rel=0.05)
    click_frames = np.round(times * SR / HOP)
    beat_frames = np.flatnonzero(d[names.index("beat_pulse")] > 0.99)
    # every click has a beat within two frames (64 ms), and no beat is far from a click
    assert np.abs(click_frames[:, None] - beat_frames[None]).min(axis=1).max() <= 2
    assert np.abs(beat_frames[:, None] - click_frames[None]).min(axis=1).max() <= 2
    onset = d[names.index("onset_strength")]
    strongest = np.argsort(onset)[-len(times) // 2 :]
    assert np.abs(strongest[:, None] - click_frames[None]).min(axis=1).max() <= 2


@pytest.mark.slow
def test_chroma_loudness_and_silence() -> None:
    names = descriptor_names()
    t = np.arange(4 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)  # A4
    d = compute_descriptors(tone, SR)
    chroma = d[names.index("chroma_C") : names.index("chroma_B") + 1].mean(axis=1)
    assert names[names.index("chroma_C") + int(chroma.argmax())] == "chroma_A"
    # RMS is proportional to amplitude: doubling it adds log 2 to log_rms
    louder = compute_descriptors(2 * tone, SR)
    rms_row = names.index("log_rms")
    np.testing.assert_allclose(louder[rms_row] - d[rms_row], np.log(2.0), atol=1e-3)
    silent = compute_descriptors(np.zeros(4 * SR, dtype=np.float32), SR)
    assert np.isfinite(silent).all()
    for row in ("onset_strength", "beat_pulse", "tempo", *(f"chroma_{c}" for c in ("C", "A"))):
        assert np.all(silent[names.index(row)] == 0), row
    with pytest.raises(ValueError, match="one mono clip"):
        compute_descriptors(np.zeros((2, SR), dtype=np.float32), SR)
    with pytest.raises(ValueError, match="shorter than n_fft"):
        compute_descriptors(np.zeros(100, dtype=np.float32), SR)


@pytest.mark.slow
def test_encoder_is_a_small_network_over_the_descriptors() -> None:
    encoder = create_encoder("descriptors", seconds=2.0).eval()
    y, _ = click_track(120.0, seconds=2.0)
    t = np.arange(2 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 330.0 * t)).astype(np.float32)
    audio = torch.from_numpy(np.stack([y, tone]))
    descriptors = encoder.descriptors(audio)
    assert descriptors.shape == (2, *encoder.descriptor_shape)
    assert not descriptors.requires_grad
    with torch.no_grad():
        direct = encoder(audio)
    assert direct.shape == (2, encoder.output_dim)
    # the first 2F outputs are each descriptor's mean and std over time (after BatchNorm,
    # which is x / sqrt(1 + eps) at initialisation in eval mode)
    f = len(encoder.names)
    scale = 1 / np.sqrt(1 + encoder.norm.eps)
    torch.testing.assert_close(direct[:, :f], descriptors.mean(dim=2) * scale)
    torch.testing.assert_close(direct[:, f : 2 * f], descriptors.std(dim=2) * scale)
