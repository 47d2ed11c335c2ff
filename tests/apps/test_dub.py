"""Dub: the written video is checked with a second decoder (decord; PyAV wrote it): its
streams and length, that the music is the source track's segment from the chosen offset
(cross-correlation), the fades, and the ducked original sound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from crossmodal.apps.cli import main
from crossmodal.data.errors import MediaError, NoStreamError
from crossmodal.errors import CrossmodalError
from crossmodal.retrieval.dub import (
    dub_video,
    estimate_tempo,
    fade_envelope,
    music_start_for,
    snap_to_beat,
)
from tests.apps.media_helpers import MUSIC_RATE, best_lag, build_index, make_video, noise_music

RATE = MUSIC_RATE  # decode the output at the music file's own rate: no resampling to compare
MAX_LAG = RATE // 100  # 10 ms


def _decoded(path: Path) -> tuple[np.ndarray, list[np.ndarray], float]:
    import decord

    audio = decord.AudioReader(str(path), sample_rate=RATE, mono=True)[:].asnumpy()[0]
    reader = decord.VideoReader(str(path))
    frames = [reader[i].asnumpy() for i in range(len(reader))]
    return audio, frames, float(reader.get_avg_fps())


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _tone_amplitude(x: np.ndarray, hz: float) -> float:
    """Amplitude of the ``hz`` sinusoid in ``x`` (projection on sin and cos)."""
    t = np.arange(len(x)) / RATE
    return float(np.hypot(*(2 * np.mean(x * f(2 * np.pi * hz * t)) for f in (np.sin, np.cos))))


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    wave = noise_music(8.0)
    path = tmp_path_factory.mktemp("music") / "track.wav"
    soundfile.write(path, wave, RATE)
    return path, wave


def test_fade_envelope_rises_holds_and_falls() -> None:
    gain = fade_envelope(100, 10)
    assert gain[0] < 0.05
    assert gain[9] > 0.95
    assert np.all(gain[10:90] == 1.0)
    np.testing.assert_allclose(gain[90:], gain[:10][::-1])
    assert np.all(np.diff(gain[:10]) > 0)
    assert fade_envelope(6, 10).max() <= 1.0
    assert len(fade_envelope(6, 10)) == 6


@pytest.mark.parametrize(
    ("match_start", "track", "video", "expected"),
    [(2.0, 10.0, 3.0, 2.0), (8.0, 10.0, 3.0, 7.0), (1.0, 2.0, 3.0, 0.0)],
)
def test_music_start_keeps_the_track_playing_to_the_end_of_the_video(
    match_start: float, track: float, video: float, expected: float
) -> None:
    assert music_start_for(match_start, track, video) == expected


def test_tempo_of_a_pulse_train() -> None:
    frame_rate = 100.0
    onset = np.zeros(1000)
    onset[7::50] = 1.0  # a pulse every 0.5 s: 120 BPM
    assert estimate_tempo(onset, frame_rate) == pytest.approx(120.0, rel=0.02)
    onset = np.zeros(1000)
    onset[3::40] = 1.0  # 150 BPM
    assert estimate_tempo(onset, frame_rate) == pytest.approx(150.0, rel=0.02)
    assert estimate_tempo(np.ones(500), frame_rate) == 0.0


def test_snap_to_beat_finds_the_nearest_click(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    wave = 0.02 * rng.standard_normal(12 * RATE).astype(np.float32)
    clicks = np.arange(0.23, 12.0, 0.5)  # 120 BPM, first beat at 0.23 s
    burst = (np.hanning(1200)[600:] * np.sin(np.arange(600) * 0.3)).astype(np.float32)
    for beat in clicks:
        wave[round(beat * RATE) : round(beat * RATE) + 600] += burst
    path = tmp_path / "clicks.wav"
    soundfile.write(path, wave, RATE)
    for start in (2.0, 4.1, 6.4, 0.0):
        snapped = snap_to_beat(path, start)
        nearest = clicks[np.argmin(np.abs(clicks - start))]
        assert snapped == pytest.approx(nearest, abs=0.03), (start, snapped)
    assert snap_to_beat(path, 2.0, tolerance=0.05) == 2.0  # no beat that close
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(8 * RATE, dtype=np.float32), RATE)
    assert snap_to_beat(silent, 2.0) == 2.0


def test_dub_copies_h264_and_lays_the_track_from_its_offset(
    tmp_path: Path, music: tuple[Path, np.ndarray]
) -> None:
    music_path, wave = music
    video = make_video(tmp_path / "in.mp4", 3.0)
    out = tmp_path / "out.mp4"
    result = dub_video(video, music_path, out, music_start=1.5, fade=0.25)
    assert result.path == out
    assert not result.video_reencoded
    assert result.duration == pytest.approx(3.0, abs=0.01)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]  # no temp left

    audio, frames, fps = _decoded(out)
    _, source_frames, _ = _decoded(video)
    # Copied, not re-encoded: the pictures decode bit-identical.
    assert fps == pytest.approx(12.0)
    assert len(frames) == len(source_frames) == 36
    assert all(np.array_equal(a, b) for a, b in zip(frames, source_frames, strict=True))
    # Trimmed to the video's length (AAC frames round up by < 1024 samples).
    assert len(audio) / RATE == pytest.approx(3.0, abs=0.03)

    # The middle second of the output is the track's [2.0, 3.0) s, within a few samples.
    start = RATE // 2
    segment = audio[start : start + RATE]
    first = round(1.5 * RATE) + start - MAX_LAG
    lag, corr = best_lag(segment, wave[first : first + RATE + 2 * MAX_LAG], MAX_LAG)
    assert corr > 0.9, (lag, corr)
    assert abs(lag) < RATE // 1000, (lag, corr)
    # No original sound: at 440 Hz the output holds no more than the track itself does.
    aligned = wave[first + MAX_LAG + lag : first + MAX_LAG + lag + RATE]
    assert _tone_amplitude(segment, 440.0) < _tone_amplitude(aligned, 440.0) + 0.01

    # Fades: quiet at both ends, full in the middle.
    edge = RATE // 50
    middle = _rms(segment)
    assert _rms(audio[:edge]) < 0.15 * middle
    assert _rms(audio[-edge:]) < 0.15 * middle


def test_dub_reencodes_other_codecs_to_browser_h264_and_ducks_the_original(
    tmp_path: Path, music: tuple[Path, np.ndarray]
) -> None:
    import av

    music_path, _ = music
    video = make_video(tmp_path / "in.mp4", 2.0, size=(63, 79), codec="mpeg4")
    out = tmp_path / "out.mp4"
    result = dub_video(video, music_path, out, keep_original=0.5)
    assert result.video_reencoded
    audio, frames, _ = _decoded(out)
    assert len(frames) == 24
    assert frames[0].shape == (62, 78, 3)
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
        assert container.streams.audio[0].codec_context.name == "aac"
    # The input's 0.3-amplitude tone is under the music at half its level.
    middle = audio[RATE // 2 : RATE + RATE // 2]
    assert _tone_amplitude(middle, 440.0) == pytest.approx(0.15, rel=0.15)


def test_dub_errors_leave_no_file(tmp_path: Path, music: tuple[Path, np.ndarray]) -> None:
    music_path, _ = music
    out = tmp_path / "out" / "dubbed.mp4"
    with pytest.raises(NoStreamError, match="no video stream"):
        dub_video(music_path, music_path, out)
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video\n")
    with pytest.raises(MediaError, match="not a readable media file"):
        dub_video(fake, music_path, out)
    video = make_video(tmp_path / "in.mp4", 1.0)
    with pytest.raises(CrossmodalError, match="keep-original"):
        dub_video(video, music_path, out, keep_original=2.0)
    with pytest.raises(MediaError):
        dub_video(video, tmp_path / "missing.wav", out)
    assert not out.exists()
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_dub_cli_uses_the_ranked_track_from_its_best_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from crossmodal.data import load_audio
    from crossmodal.retrieval.recommender import Recommender

    _manifest, index_dir = build_index(tmp_path)
    # 5 s: longer than the model's 4-s window, and than the corpus's 4-s tracks.
    video = make_video(tmp_path / "query.mp4", 5.0, tone_hz=None)
    out = tmp_path / "dubbed.mp4"
    assert main(["dub", str(video), "--index", str(index_dir), "-o", str(out), "--rank", "2"]) == 0
    assert str(out) in capsys.readouterr().out

    rec = Recommender.load(index_dir)
    second = rec.recommend_music(video, k=2)[1]
    rec.close()
    start = music_start_for(second.start, second.duration or 0.0, 5.0)
    assert start == 0.0  # the track is shorter than the video: it starts at its beginning
    track, offset = load_audio(second.path, RATE, 0.0)
    audio, _, _ = _decoded(out)
    segment = audio[RATE // 2 : RATE // 2 + RATE]
    first = round((start - offset) * RATE) + RATE // 2 - MAX_LAG
    lag, corr = best_lag(segment, track[first : first + RATE + 2 * MAX_LAG], MAX_LAG)
    assert corr > 0.9, (lag, corr)
    assert abs(lag) < RATE // 1000, (lag, corr)
    # After the 4-s track ends the rest of the video is silent.
    assert _rms(audio[round(4.1 * RATE) :]) < 0.01 * _rms(segment)

    assert main(["dub", str(video), "--index", str(index_dir), "-o", str(out), "--rank", "99"]) == 2
    assert main(["dub", str(video), "--index", str(index_dir), "-o", str(tmp_path / "x.avi")]) == 2
