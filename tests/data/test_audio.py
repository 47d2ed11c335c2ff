from __future__ import annotations

import numpy as np
import pytest
import torch

from crossmodal.data import (
    AudioSpec,
    CorruptMediaError,
    LogMel,
    NoStreamError,
    TooShortError,
    cut_windows,
    load_audio,
    load_audio_windows,
)


def _peak_hz(wave: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / sample_rate)[spectrum.argmax()])


def _gain_and_fit(decoded: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    n = min(len(decoded), len(reference))
    d, r = decoded[:n].astype(np.float64), reference[:n].astype(np.float64)
    gain = float(d @ r / (r @ r))
    residual = float(np.sqrt(np.mean((d - gain * r) ** 2)) / np.sqrt(np.mean(r**2)))
    return gain, residual


def test_soundtrack_decodes_to_the_written_signal(make_video, helpers) -> None:
    music = helpers.tone(4.0, 16000, freq=440.0, amp=0.5)
    path = make_video(audio=music)
    wave, offset = load_audio(path, 16000)
    assert offset == 0.0
    assert wave.dtype == np.float32
    assert len(wave) >= len(music)  # AAC pads the last frame; priming is trimmed
    gain, residual = _gain_and_fit(wave, music)
    assert gain == pytest.approx(1.0, abs=0.05)  # no shift, no level change
    assert residual < 0.1


def test_multichannel_soundtracks_become_the_mean_of_channels(make_video, helpers) -> None:
    left = helpers.tone(2.0, 16000, freq=440.0, amp=0.4)
    right = helpers.tone(2.0, 16000, freq=1000.0, amp=0.2)
    stereo = make_video("stereo.mp4", frames=24, audio=np.stack([left, right]))
    gain_mean, residual = _gain_and_fit(load_audio(stereo, 16000)[0], (left + right) / 2)
    assert gain_mean == pytest.approx(1.0, abs=0.05)
    assert residual < 0.1

    # 5.1: the same tone in the five full-range channels, silence in the LFE.
    surround = np.zeros((6, len(left)), dtype=np.float32)
    surround[[0, 1, 2, 4, 5]] = left
    wave = load_audio(make_video("surround.mp4", frames=24, audio=surround), 16000)[0]
    assert np.isfinite(wave).all()
    gain, residual = _gain_and_fit(wave, left * 5 / 6)
    assert gain == pytest.approx(1.0, abs=0.05)
    assert residual < 0.1


@pytest.mark.parametrize("native_rate", [8000, 44100, 96000])
def test_resampling_keeps_pitch_and_length(make_video, helpers, native_rate: int) -> None:
    path = make_video(audio=helpers.tone(4.0, native_rate, freq=1000.0), sample_rate=native_rate)
    wave, offset = load_audio(path, 16000)
    assert offset == 0.0
    # AAC pads to whole 1024-sample frames: up to 128 ms at 8 kHz.
    assert 4.0 * 16000 <= len(wave) <= 4.15 * 16000
    assert _peak_hz(wave[1000:60000], 16000) == pytest.approx(1000.0, abs=2.0)


def test_standalone_files_read_exact_samples(make_audio) -> None:
    # A ramp makes every sample identifiable: window k must start at sample start × rate.
    rate = 16000
    ramp = (np.arange(3 * rate) / (3 * rate)).astype(np.float32) - 0.5
    for name in ("ramp.wav", "ramp.flac"):
        path = make_audio(name, ramp, rate, subtype="FLOAT" if name.endswith("wav") else None)
        wave, offset = load_audio(path, rate, 1.0, 2.0)
        windows = cut_windows(wave, rate, offset, [1.0, 1.25], 8000)
        tol = 1e-6 if name.endswith("wav") else 1e-4  # 16-bit FLAC quantises
        np.testing.assert_allclose(windows[0], ramp[16000:24000], atol=tol)
        np.testing.assert_allclose(windows[1], ramp[20000:28000], atol=tol)


def test_stereo_wav_is_averaged(make_audio, helpers) -> None:
    left, right = helpers.tone(1.0, 8000, 300.0), helpers.tone(1.0, 8000, 700.0, amp=0.25)
    path = make_audio("st.wav", np.stack([left, right]), 8000, subtype="FLOAT")
    wave, _ = load_audio(path, 8000)
    np.testing.assert_allclose(wave, (left + right) / 2, atol=1e-6)


def test_windows_as_waveforms_or_logmels(make_audio, helpers) -> None:
    rate = 16000
    music = helpers.tone(3.0, rate, 500.0)
    path = make_audio("t.wav", music, rate, subtype="FLOAT")
    wave_spec = AudioSpec(sample_rate=rate, seconds=1.0, representation="waveform")
    waves = load_audio_windows(path, wave_spec, [0.5, 2.0])
    assert waves.shape == (2, 16000)
    np.testing.assert_allclose(waves[0].numpy(), music[8000:24000], atol=1e-6)
    mel_spec = AudioSpec(sample_rate=rate, seconds=1.0, n_mels=32)
    mels = load_audio_windows(path, mel_spec, [0.5, 2.0])
    assert mels.shape == (2, 32, mel_spec.num_mel_frames)
    torch.testing.assert_close(mels, LogMel(mel_spec)(waves))


def test_audio_errors_are_specific(make_video, make_audio, helpers, tmp_path) -> None:
    with pytest.raises(NoStreamError, match="no audio stream"):
        load_audio(make_video("silent.mp4", audio=None), 8000)
    short = make_audio("short.wav", helpers.tone(0.5, 8000), 8000)
    with pytest.raises(TooShortError, match="shorter than the window"):
        load_audio_windows(short, AudioSpec(sample_rate=8000, seconds=1.0), [0.0])
    broken = helpers.tone(1.0, 8000)
    broken[100] = np.nan
    with pytest.raises(CorruptMediaError, match="NaN"):
        load_audio(make_audio("nan.wav", broken, 8000, subtype="FLOAT"), 8000)
    fake = tmp_path / "fake.mp3"
    fake.write_text("not audio at all\n" * 50)
    with pytest.raises(CorruptMediaError, match="not a readable media file"):
        load_audio(fake, 8000)


def test_cut_windows_tolerates_only_a_few_missing_samples() -> None:
    wave = np.ones(16000, dtype=np.float32)
    out = cut_windows(wave, 16000, 0.0, [0.0, 0.005], 16000)  # 5 ms short: zero-filled tail
    assert out[1, :15920].min() == 1.0
    assert out[1, 15920:].max() == 0.0
    with pytest.raises(TooShortError):
        cut_windows(wave, 16000, 0.0, [0.02], 16000)


def test_packed_pcm_soundtrack(make_video, helpers) -> None:
    # 16-bit interleaved PCM in a .mov: PyAV hands packed samples.
    left = helpers.tone(2.0, 16000, freq=300.0, amp=0.5)
    right = helpers.tone(2.0, 16000, freq=900.0, amp=0.25)
    path = make_video("pcm.mov", frames=24, audio=np.stack([left, right]), audio_codec="pcm_s16le")
    wave, _ = load_audio(path, 16000)
    np.testing.assert_allclose(wave[: len(left)], (left + right) / 2, atol=2e-4)
