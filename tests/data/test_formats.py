"""Formats users bring: every file is written with PyAV, decoded by the decoder chain, and
compared with the truth it was written from and with a second decoder.

Video: frame f is painted with a colour that names it, so the decoded frame's index is
read off its pixels; the chain (decord, or PyAV where decord fails) must return the
same frames as PyAV decoding the file on its own. Audio: the stream decoder (PyAV and
ffmpeg's resampler) must agree with libsndfile (soundfile) or, for codecs libsndfile
does not read, PyAV decoding at the native rate and torchaudio resampling; and the
written tones must be where they were written.

The files are made once per session, tiny (3 s), in a folder whose name has spaces and
non-ASCII characters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from crossmodal.data import AudioSpec, VideoFile, VideoSpec, load_audio
from crossmodal.data.video import PyAVFrames
from crossmodal.data.writer import write_media

from .conftest import decoded_index, painted_frames, tone

SPEC = VideoSpec(num_frames=4, height=32, width=32)
RATE = 16000


def _has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:  # PyAV raises UnknownCodecError (a ValueError) or an FFmpegError
        return False
    return True


@dataclass(frozen=True)
class VideoCase:
    name: str
    codec: str
    fps: float = 12.0
    options: tuple[tuple[str, str], ...] = ()
    audio_codec: str = "aac"
    size: tuple[int, int] = (48, 64)  # (height, width)
    frames: int = 36


# MPEG-1/2 allow only the standard frame rates (24 here); lossy codecs get a bit rate at
# which the painted levels survive.
BITRATE = (("b", "2M"),)
VIDEO_CASES = [
    VideoCase("h264 in mp4.mp4", "libx264", options=(("preset", "ultrafast"), ("qp", "0"))),
    VideoCase("h264 in mkv.mkv", "libx264"),
    VideoCase("h264 in mov.mov", "libx264"),
    VideoCase("h265 in mp4.mp4", "libx265"),
    VideoCase("h265 in mkv.mkv", "libx265"),
    VideoCase("vp8 in webm.webm", "libvpx", options=(("crf", "4"), ("b", "4M")), audio_codec="libopus"),
    VideoCase("vp8 in ogg.ogg", "libvpx", options=(("crf", "4"), ("b", "4M")), audio_codec="libopus"),
    VideoCase("vp9 in webm.webm", "libvpx-vp9", audio_codec="libopus"),
    VideoCase("vp9 in mkv.mkv", "libvpx-vp9"),
    VideoCase("theora in ogg.ogg", "libtheora", audio_codec="libopus"),
    VideoCase("mpeg1 in mpg.mpg", "mpeg1video", fps=24, options=BITRATE, audio_codec="mp2"),
    VideoCase("mpeg2 in mpg.mpg", "mpeg2video", fps=24, options=BITRATE, audio_codec="mp2"),
    VideoCase("mpeg2 in ts.ts", "mpeg2video", fps=24, options=BITRATE, audio_codec="mp2"),
    VideoCase("mjpeg in avi.avi", "mjpeg", audio_codec="pcm_s16le"),
    VideoCase("mjpeg in mov.mov", "mjpeg"),
    VideoCase("mpeg4 odd size.avi", "mpeg4", options=BITRATE, size=(33, 47), audio_codec="libmp3lame"),
    VideoCase("vidéo été 日本.mkv", "libx264"),
]  # fmt: skip
CONTAINERS = {".mpg": "mpeg", ".ts": "mpegts", ".ogg": "ogg"}


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("média à tester")


@pytest.fixture(scope="session")
def videos(media_dir: Path) -> dict[str, Path]:
    """Every video case whose encoder this PyAV build has, written once."""
    made = {}
    for case in VIDEO_CASES:
        if not _has_encoder(case.codec):
            continue
        sample_rate = 48000 if case.audio_codec == "libopus" else RATE
        made[case.name] = write_media(
            media_dir / case.name,
            painted_frames(case.frames, *case.size),
            case.fps,
            tone(case.frames / case.fps, sample_rate),
            sample_rate,
            video_codec=case.codec,
            video_options=dict(case.options) or None,
            audio_codec=case.audio_codec,
            container_format=CONTAINERS.get(Path(case.name).suffix),
        )
    return made


@pytest.mark.parametrize("case", VIDEO_CASES, ids=[c.name for c in VIDEO_CASES])
def test_video_formats_decode_to_the_written_frames(
    case: VideoCase, videos: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    if case.name not in videos:
        pytest.skip(f"this PyAV build has no {case.codec} encoder to write the file with")
    path = videos[case.name]
    with caplog.at_level(logging.DEBUG, logger="crossmodal.data.video"):
        video = VideoFile(path, SPEC)
    assert f"video frames decoded by {video.decoder}" in caplog.text
    assert len(video) == case.frames
    # The decoded frames are the truth (MPEG program streams' headers guess durations).
    assert video.end - video.starts[0] == pytest.approx(case.frames / case.fps, abs=0.1)
    indices = np.arange(len(video))
    frames = video.frames(indices)
    assert frames.shape == (case.frames, SPEC.height, SPEC.width, 3)
    np.testing.assert_array_equal(decoded_index(frames), indices)
    # Times map to the frame on screen: the middle of frame f's interval shows frame f.
    middle = video.starts + 0.5 / case.fps
    np.testing.assert_array_equal(decoded_index(video.frames_at(middle)), indices)
    # A second decoder, PyAV on its own, gives the same frames (scalers differ a little).
    second = PyAVFrames(path, SPEC, 1)
    np.testing.assert_array_equal(decoded_index(second.frames(list(indices))), indices)
    diff = np.abs(second.frames(list(indices)).astype(int) - frames.astype(int))
    assert diff.mean() < 3.0


def test_decoder_chain_falls_back_to_pyav_with_the_same_frames(
    videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from crossmodal.data import video as video_module
    from crossmodal.data.errors import CorruptMediaError

    path = videos["h264 in mkv.mkv"]
    first = VideoFile(path, SPEC)
    assert first.decoder == "decord"

    def unmeasurable(self: object, path: Path, *args: object) -> None:
        raise CorruptMediaError(path, "Failed to measure duration/frame-count (broken metadata)")

    monkeypatch.setattr(video_module.DecordFrames, "__init__", unmeasurable)
    fallback = VideoFile(path, SPEC)
    assert fallback.decoder == "pyav"
    np.testing.assert_allclose(fallback.starts, first.starts, atol=1e-3)
    assert fallback.end == pytest.approx(first.end, abs=1e-3)
    times = np.linspace(0.0, 2.9, 20)
    np.testing.assert_array_equal(
        decoded_index(fallback.frames_at(times)), decoded_index(first.frames_at(times))
    )


def test_variable_frame_rate_lands_on_the_right_frames(media_dir: Path) -> None:
    times = np.cumsum([0.0] + [0.05, 0.2] * 12)
    path = write_media(
        media_dir / "vfr.mkv",
        painted_frames(len(times), 32, 32),
        10.0,
        None,
        frame_times=times,
        video_options={"preset": "ultrafast", "qp": "0"},
    )
    for video in (VideoFile(path, SPEC), PyAVFrames(path, SPEC, 1)):
        np.testing.assert_allclose(video.starts, times, atol=2e-3)
    chain = VideoFile(path, SPEC)
    np.testing.assert_array_equal(
        decoded_index(chain.frames_at(times + 0.01)), np.arange(len(times))
    )


@dataclass(frozen=True)
class AudioCase:
    name: str
    codec: str
    rate: int
    channels: int
    reference: str = "soundfile"  # second decoder: soundfile, or "pyav-native"


AUDIO_CASES = [
    AudioCase("aac stereo 44k.m4a", "aac", 44100, 2, "pyav-native"),
    AudioCase("aac mono 8k.m4a", "aac", 8000, 1, "pyav-native"),
    AudioCase("aac 5.1 48k.m4a", "aac", 48000, 6, "pyav-native"),
    AudioCase("opus stereo 48k.opus", "libopus", 48000, 2),
    AudioCase("opus mono 48k.ogg", "libopus", 48000, 1),
    AudioCase("vorbis stereo 44k.ogg", "vorbis", 44100, 2),
    AudioCase("mp3 stereo 44k.mp3", "libmp3lame", 44100, 2),
    AudioCase("mp3 mono 22k.mp3", "libmp3lame", 22050, 1),
    AudioCase("flac stereo 96k.flac", "flac", 96000, 2),
    AudioCase("flac mono 8k.flac", "flac", 8000, 1),
    AudioCase("wav 16-bit stereo 44k.wav", "pcm_s16le", 44100, 2),
    AudioCase("wav 24-bit 5.1 48k.wav", "pcm_s24le", 48000, 6),
    AudioCase("wav float mono 96k.wav", "pcm_f32le", 96000, 1),
    AudioCase("ac3 5.1 48k.ac3", "ac3", 48000, 6, "pyav-native"),
    AudioCase("ac3 stereo 44k.ac3", "ac3", 44100, 2, "pyav-native"),
    AudioCase("musique ünïcode 音楽.flac", "flac", 44100, 2),
]
# Channel c carries a tone of FREQS[c] (the LFE of 5.1 a low one).
FREQS = (440.0, 660.0, 550.0, 60.0, 330.0, 770.0)
SECONDS = 3.0


def _signal(case: AudioCase) -> np.ndarray:
    return np.stack([tone(SECONDS, case.rate, FREQS[c], amp=0.3) for c in range(case.channels)])


@pytest.fixture(scope="session")
def audios(media_dir: Path) -> dict[str, Path]:
    made = {}
    for case in AUDIO_CASES:
        if not _has_encoder(case.codec):
            continue
        suffix = Path(case.name).suffix
        made[case.name] = write_media(
            media_dir / case.name,
            None,
            audio=_signal(case),
            sample_rate=case.rate,
            audio_codec=case.codec,
            container_format={".m4a": "mp4", ".opus": "ogg", ".ogg": "ogg"}.get(suffix),
        )
    return made


def _second_decoder(path: Path, case: AudioCase) -> np.ndarray:
    """Mono at RATE by another route: libsndfile, or PyAV at the native rate (no
    resampler) and torchaudio's windowed-sinc resampler."""
    import torchaudio

    if case.reference == "soundfile":
        import soundfile

        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        mono = data.mean(axis=1)
    else:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            rate = stream.rate
            chunks = [f.to_ndarray() for f in container.decode(stream)]
        planar = np.concatenate(chunks, axis=1)
        mono = planar.mean(axis=0, dtype=np.float32)
    return torchaudio.functional.resample(
        torch.from_numpy(np.ascontiguousarray(mono)), rate, RATE
    ).numpy()


def _fit(decoded: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(gain, relative residual) of decoded against reference, edges left out."""
    n = min(len(decoded), len(reference))
    d, r = decoded[800 : n - 800].astype(np.float64), reference[800 : n - 800].astype(np.float64)
    gain = float(d @ r / (r @ r))
    return gain, float(np.sqrt(np.mean((d - gain * r) ** 2) / np.mean(r**2)))


@pytest.mark.parametrize("case", AUDIO_CASES, ids=[c.name for c in AUDIO_CASES])
def test_audio_formats_stream_to_what_a_second_decoder_gives(
    case: AudioCase, audios: dict[str, Path]
) -> None:
    if case.name not in audios:
        pytest.skip(f"this PyAV build has no {case.codec} encoder to write the file with")
    path = audios[case.name]
    wave, offset = load_audio(path, RATE)
    assert offset == 0.0
    assert wave.dtype == np.float32
    assert abs(len(wave) / RATE - SECONDS) < 0.1
    gain, residual = _fit(wave, _second_decoder(path, case))
    assert gain == pytest.approx(1.0, abs=0.02)
    assert residual < 0.02
    # The tones are where they were written: lossless codecs give the source back; lossy
    # ones keep its strongest tone (AC-3 and Vorbis shift phases and levels per band).
    source = _resampled(_signal(case).mean(axis=0), case.rate)
    if case.codec in ("flac", "pcm_s16le", "pcm_s24le", "pcm_f32le"):
        gain, residual = _fit(wave, source)
        assert gain == pytest.approx(1.0, abs=1e-3)
        assert residual < 1e-3
    else:
        spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
        bins = np.fft.rfftfreq(len(wave), 1 / RATE)
        for freq in FREQS[: case.channels]:
            near = spectrum[np.abs(bins - freq) < 3].max()
            assert near > 0.05 * spectrum.max(), f"the {freq:g} Hz tone is missing"


def _resampled(source: np.ndarray, rate: int) -> np.ndarray:
    import torchaudio

    return torchaudio.functional.resample(torch.from_numpy(source), rate, RATE).numpy()


def test_a_range_decodes_like_the_same_samples_of_the_whole(audios: dict[str, Path]) -> None:
    for name in ("aac stereo 44k.m4a", "opus stereo 48k.opus", "wav 16-bit stereo 44k.wav"):
        path = audios[name]
        whole, _ = load_audio(path, RATE)
        part, offset = load_audio(path, RATE, 1.3, 2.1)
        first = round(offset * RATE)
        assert offset == pytest.approx(1.3, abs=1 / RATE)
        assert len(part) == round(0.8 * RATE)
        # After a seek, decoding restarts between two output samples: half a sample at most.
        np.testing.assert_allclose(part, whole[first : first + len(part)], atol=0.05)


def test_streams_of_different_lengths_stop_at_their_decoded_ends(media_dir: Path) -> None:
    from crossmodal.data.ingest import WindowJob, ingest

    audio_short = write_media(
        media_dir / "audio short.mkv", painted_frames(120, 32, 32), 12.0, tone(9.0, RATE), RATE
    )
    video_short = write_media(
        media_dir / "video short.mp4", painted_frames(108, 32, 32), 12.0, tone(10.0, RATE), RATE
    )
    spec = AudioSpec(seconds=4.0, n_mels=32)
    for path, video_end, music_end in ((audio_short, 10.0, 9.0), (video_short, 9.0, 10.0)):
        for modality, end in (("video", video_end), ("music", music_end)):
            job = WindowJob(path, modality, SPEC, spec, hop=2.0)
            batches = [b for _, b in ingest([job]) if not isinstance(b, str)]
            starts = np.concatenate([b.starts for b in batches])
            assert batches[-1].end == pytest.approx(end, abs=0.05)
            # The last window ends at the decoded end (a tail under a quarter hop excepted).
            assert -1e-6 <= batches[-1].end - (starts[-1] + 4.0) < 0.5


@pytest.mark.slow
def test_twelve_minute_track_streams_in_bounded_memory(media_dir: Path) -> None:
    import os
    import subprocess
    import sys

    # Peak RSS of cutting every window of a 6-minute and a 12-minute 48 kHz stereo Opus
    # track, each in a fresh process: the native-rate 12-minute file would be 276 MB as
    # float32 stereo, its resampled mono 46 MB; streaming holds neither. (The peak climbs
    # by some tens of MB over the first few batches, the allocator settling, then stays.)
    # VmHWM, not ru_maxrss: the latter carries the parent's peak across fork and exec.
    code = (
        "import re, sys\n"
        "from crossmodal.data.audio import audio_window_batches\n"
        "from crossmodal.data.specs import AudioSpec\n"
        "n = sum(len(b.starts) for b in audio_window_batches(sys.argv[1], AudioSpec(), 2.0, 32))\n"
        "status = open('/proc/self/status').read()\n"
        "print(n, int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) // 1024)\n"
    )
    peaks = {}
    for minutes in (6, 12):
        seconds = minutes * 60
        t = np.arange(seconds * 48000) / 48000
        stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 950 * t)])
        path = write_media(
            media_dir / f"track of {minutes} min.opus",
            None,
            audio=stereo.astype(np.float32),
            sample_rate=48000,
            audio_codec="libopus",
            container_format="ogg",
        )
        del t, stereo
        # glibc's default arenas keep freed memory and move the peak by tens of MB from
        # run to run (measured 749-839 MB for 6, 12 and 36 minutes alike); one arena with
        # large blocks mmapped (returned when freed) makes the peak what the code holds:
        # 693 MB for all three lengths, every run.
        env = {**os.environ, "MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": "65536"}
        result = subprocess.run(
            [sys.executable, "-c", code, str(path)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        windows, peak_mb = (int(x) for x in result.stdout.split())
        assert windows == (seconds - 4) // 2 + 1
        peaks[minutes] = peak_mb
    assert peaks[12] - peaks[6] < 40, f"peak RSS by length (MB): {peaks}"
