"""video_tiny and audio_tiny internals against straightforward formulations."""

from __future__ import annotations

import pytest
import torch

from crossmodal.data.logmel import LogMel
from crossmodal.encoders import create_encoder


@pytest.mark.parametrize("motion", [True, False])
def test_video_tiny_frame_features_match_a_plain_formulation(motion: bool) -> None:
    encoder = create_encoder("video_tiny", motion=motion, size=16, num_frames=6).eval()
    video = encoder.example_input(2)
    b, _, t, h, w = video.shape
    channels = [video]
    if motion:
        diff = torch.zeros_like(video)
        diff[:, :, 1:] = video[:, :, 1:] - video[:, :, :-1]
        channels.append(diff)
    frames = torch.cat(channels, dim=1).transpose(1, 2).reshape(b * t, -1, h, w)
    with torch.no_grad():
        maps = encoder.stem(frames)
        expected = torch.cat([maps.mean(dim=(2, 3)), maps.amax(dim=(2, 3))], dim=1).view(b, t, -1)
        torch.testing.assert_close(encoder.frame_features(video), expected)


def test_video_tiny_sees_motion_that_single_frames_do_not_show() -> None:
    # the same frames in another order: identical per-frame content, different motion
    encoder = create_encoder("video_tiny", size=16, num_frames=6).eval()
    video = encoder.example_input(1)
    shuffled = video[:, :, torch.tensor([0, 2, 1, 3, 5, 4])]
    with torch.no_grad():
        a, b = encoder.frame_features(video), encoder.frame_features(shuffled)
    # frame 0 has no predecessor in both, so it matches; frame 1 now follows frame 0 with
    # different content, so its motion features differ
    torch.testing.assert_close(a[0, 0], b[0, 0])
    assert not torch.allclose(a[0, 2], b[0, 1])


def test_input_gradients_flow_through_the_motion_channel() -> None:
    encoder = create_encoder("video_tiny", size=16, num_frames=6)
    video = encoder.example_input(2).requires_grad_(True)
    encoder(video).sum().backward()
    assert video.grad is not None
    assert video.grad.abs().sum() > 0


def test_audio_tiny_time_resolution_is_close_to_the_video_frame_rate() -> None:
    encoder = create_encoder("audio_tiny")
    steps_per_second = encoder.num_steps / encoder.audio_spec.seconds
    video_fps = create_encoder("video_tiny").video_spec.fps
    assert encoder.num_steps == 51
    assert abs(steps_per_second - video_fps) / video_fps < 0.1


def test_audio_tiny_on_waveforms_applies_the_shared_logmel() -> None:
    on_mel = create_encoder("audio_tiny").eval()
    on_wave = create_encoder("audio_tiny", representation="waveform").eval()
    missing, unexpected = on_wave.load_state_dict(on_mel.state_dict(), strict=False)
    assert unexpected == []
    assert all(k.startswith("frontend.") for k in missing)
    wave = on_wave.example_input(2)
    assert wave.shape == (2, on_wave.audio_spec.num_samples)
    with torch.no_grad():
        torch.testing.assert_close(on_wave(wave), on_mel(LogMel(on_mel.audio_spec)(wave)))


def _naive_clip_statistics(mel: torch.Tensor, lags: int) -> torch.Tensor:
    """Per-bin mean/std and the onset envelope's autocorrelation, written as loops."""
    rows = []
    for clip in mel.double():
        n_mels, frames = clip.shape
        mean = [sum(clip[m, t] for t in range(frames)) / frames for m in range(n_mels)]
        std = [
            (sum((clip[m, t] - mean[m]) ** 2 for t in range(frames)) / (frames - 1)) ** 0.5
            for m in range(n_mels)
        ]
        onset = [
            sum(max(0.0, float(clip[m, t + 1] - clip[m, t])) for m in range(n_mels)) / n_mels
            for t in range(frames - 1)
        ]
        centre = sum(onset) / len(onset)
        onset = [o - centre for o in onset]
        r = [sum(onset[t] * onset[t + k] for t in range(len(onset) - k)) for k in range(lags + 1)]
        rows.append(
            torch.tensor([*map(float, mean), *map(float, std)] + [float(x / r[0]) for x in r[1:]])
        )
    return torch.stack(rows).double()


def test_audio_tiny_clip_statistics_match_a_naive_loop() -> None:
    encoder = create_encoder("audio_tiny", seconds=0.5, n_mels=6, summary_lags=7).eval()
    mel = torch.randn(3, 6, encoder.audio_spec.num_mel_frames)
    got = encoder.clip_statistics(mel)
    torch.testing.assert_close(got.double(), _naive_clip_statistics(mel, 7), atol=1e-5, rtol=1e-4)


def test_audio_tiny_summary_reads_the_period_of_a_click_train() -> None:
    # Clicks every 10 frames: the onset autocorrelation peaks at lag 10 (and 20), and the
    # summary of a train of another period differs.
    encoder = create_encoder("audio_tiny", seconds=1.0, n_mels=8, summary_lags=24).eval()
    frames = encoder.audio_spec.num_mel_frames
    mel = torch.zeros(2, 8, frames)
    mel[0, :, ::10] = 1.0
    mel[1, :, ::7] = 1.0
    lags = encoder.clip_statistics(mel)[:, 16:]
    assert int(lags[0].argmax()) + 1 == 10
    assert int(lags[1].argmax()) + 1 == 7
    assert lags[0, 19] > 0.5
    assert lags[0, 4] < 0


def test_audio_tiny_summary_is_appended_and_off_by_default() -> None:
    plain = create_encoder("audio_tiny", seconds=1.0)
    summary = create_encoder("audio_tiny", seconds=1.0, summary_lags=20, summary_dim=16)
    assert summary.output_dim == plain.output_dim + 16
    # Off by default: a model file written before the option loads unchanged.
    assert not any(k.startswith("summary") for k in plain.state_dict())
    audio = summary.example_input(4).requires_grad_(True)
    out = summary(audio)
    assert out.shape == (4, summary.output_dim)
    out[:, -16:].sum().backward()
    assert audio.grad is not None
    assert audio.grad.abs().sum() > 0
    # A silent clip has no onsets: finite zeros, not NaN.
    stats = summary.eval().clip_statistics(torch.zeros(1, 40, summary.audio_spec.num_mel_frames))
    assert torch.isfinite(stats).all()
    assert stats[0, 80:].abs().sum() == 0


def test_audio_tiny_summary_lags_are_checked() -> None:
    with pytest.raises(ValueError, match="summary_lags"):
        create_encoder("audio_tiny", seconds=0.5, summary_lags=500)


def _harmony_encoder():
    return create_encoder(
        "audio_tiny", seconds=2.0, summary_lags=20, representation="waveform", harmony=True
    ).eval()


def _chord_and_melody(root: int, major: bool, sr: int = 16000, seconds: float = 2.0):
    """A held triad on ``root`` (MIDI) under a melody of short notes from its scale."""
    import numpy as np

    t = np.arange(int(sr * seconds)) / sr

    def tone(m: float) -> np.ndarray:
        return np.sin(2 * np.pi * 440.0 * 2 ** ((m - 69) / 12) * t)

    third = 4 if major else 3
    wave = sum(0.3 * tone(root + i) for i in (0, third, 7))
    scale = (0, 2, 4, 5, 7, 9, 11) if major else (0, 2, 3, 5, 7, 8, 10)
    rng = np.random.default_rng(0)  # the same melody, transposed, in every key
    step = sr // 4
    for k in range(len(t) // step):
        pitch = root + 12 + scale[rng.integers(7)] + 12 * rng.integers(2)
        wave[k * step : (k + 1) * step] += tone(pitch)[k * step : (k + 1) * step]
    return torch.tensor(wave, dtype=torch.float32)


def test_audio_tiny_harmony_tells_major_from_minor_in_every_key() -> None:
    encoder = _harmony_encoder()
    clips = [_chord_and_melody(root, major) for root in range(48, 60) for major in (True, False)]
    with torch.no_grad():
        stats = encoder.harmony_statistics(torch.stack(clips))
    mode = stats[:, 2]  # best major correlation − best minor correlation
    assert (mode[0::2] > mode[1::2].max()).all()  # every major clip above every minor one
    # The same music in 12 keys: the held chroma transposes with it, and the mode reading
    # barely moves (a bare triad is itself ambiguous between a major key and the minor key
    # a third above, which K-S weighs by the triad's loudest note: hence the tolerance).
    assert float(mode[0::2].std()) < 0.1
    assert float(mode[1::2].std()) < 0.1
    with torch.no_grad():
        chroma = encoder.held_chroma(torch.stack(clips))
    for i, shift in enumerate(range(12)):
        for major in (0, 1):
            moved = torch.roll(chroma[2 * i + major], -shift)
            torch.testing.assert_close(moved, chroma[major], atol=0.08, rtol=0)


def test_audio_tiny_harmony_key_fit_matches_a_naive_correlation() -> None:
    # Rebuild the features from the held chroma with numpy's Pearson correlation against
    # the published Krumhansl–Kessler ratings rolled to every tonic.
    import numpy as np

    from crossmodal.encoders.music.tiny import KEY_PROFILE_MAJOR, KEY_PROFILE_MINOR

    encoder = _harmony_encoder()
    audio = torch.stack([_chord_and_melody(50, True), _chord_and_melody(57, False)])
    audio = audio + 0.01 * torch.randn(audio.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        stats = encoder.harmony_statistics(audio).double().numpy()
        chromas = encoder.held_chroma(audio).double().numpy()
    for row, chroma in zip(stats, chromas, strict=True):
        assert abs(chroma.sum() - 1.0) < 1e-5
        fits = np.array(
            [
                [np.corrcoef(chroma, np.roll(np.array(p), k))[0, 1] for k in range(12)]
                for p in (KEY_PROFILE_MAJOR, KEY_PROFILE_MINOR)
            ]
        )
        np.testing.assert_allclose(row[:2], fits.max(axis=1), atol=1e-4)
        assert abs(row[2] - (fits[0].max() - fits[1].max())) < 1e-4
        tonic = int(np.argmax(fits.ravel())) % 12
        np.testing.assert_allclose(row[3:], np.roll(chroma, -tonic), atol=1e-6)


def test_audio_tiny_harmony_puts_a_held_tone_in_its_pitch_class() -> None:
    encoder = _harmony_encoder()
    t = torch.arange(32000) / 16000
    pitches = (31, 40, 57, 79, 94)
    tones = [torch.sin(2 * torch.pi * 440.0 * 2 ** ((m - 69) / 12) * t) for m in pitches]
    # A melody note that passes (a tenth of the clip) does not move the held chroma.
    passing = torch.sin(2 * torch.pi * 440.0 * 2 ** ((64 - 69) / 12) * t) * (t < 0.2)
    with torch.no_grad():
        chroma = encoder.held_chroma(torch.stack(tones) + passing)
    for row, m in zip(chroma, pitches, strict=True):
        assert int(row.argmax()) == m % 12
        # The bass leaks into its neighbours (2 Hz bins, 2.5 Hz between semitones at 41 Hz).
        assert float(row[m % 12]) > (0.6 if m < 45 else 0.9)
    silent = encoder.harmony_statistics(torch.zeros(1, 32000))
    assert torch.isfinite(silent).all()
    assert silent[0, :3].abs().max() < 1e-6


def test_audio_tiny_harmony_needs_the_waveform() -> None:
    with pytest.raises(ValueError, match="harmony needs"):
        create_encoder("audio_tiny", seconds=1.0, summary_lags=20, harmony=True)
    with pytest.raises(ValueError, match="harmony needs"):
        create_encoder("audio_tiny", seconds=1.0, representation="waveform", harmony=True)
    encoder = create_encoder(
        "audio_tiny",
        seconds=1.0,
        summary_lags=20,
        summary_dim=8,
        representation="waveform",
        harmony=True,
    )
    out = encoder(encoder.example_input(3))
    assert out.shape == (3, encoder.output_dim)
    assert torch.isfinite(out).all()


def test_audio_tiny_harmony_is_float32_under_float16_autocast() -> None:
    # The 8192-point STFT's power overflows float16 (and its 1e-10 floor underflows):
    # under autocast the summary is still computed in float32, and equals the plain one.
    encoder = _harmony_encoder()
    audio = torch.stack([0.3 * _chord_and_melody(50, True), torch.zeros(32000)])
    with torch.no_grad():
        plain = encoder.harmony_statistics(audio)
        with torch.autocast("cpu", dtype=torch.float16):
            mixed = encoder.harmony_statistics(audio)
            out = encoder(audio)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, plain)
    assert torch.isfinite(out).all()
