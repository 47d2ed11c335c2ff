"""Dub a video: the product's end result, the video back with the chosen music on it.

:func:`dub_video` mixes a track into a video from a given offset, trimmed to the video's
length, with short fades in and out, keeping the video's own sound ducked under it when
asked. :func:`dub_recommended` asks a :class:`~crossmodal.retrieval.recommender.Recommender`
for the track first and starts it at the track's best-matching window.

The output is an MP4 that browsers play: H.264 video (copied untouched when the input
already is H.264 yuv420p, re-encoded otherwise) and AAC audio, written atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from crossmodal.errors import CrossmodalError
from crossmodal.fileio import atomic_path

if TYPE_CHECKING:
    from crossmodal.retrieval.recommender import Match, Recommender

SAMPLE_RATE = 48000
# Beat analysis: 16 kHz log-mel at a 10-ms hop, tempo searched in 60–200 BPM.
BEAT_RATE = 16000
BEAT_HOP = 160
TEMPO_RANGE = (60.0, 200.0)
AUDIO_BIT_RATE = 128_000
# Headroom left under full scale after mixing (AAC overshoots a little on peaks).
PEAK = 0.97


@dataclass(frozen=True)
class DubResult:
    """What :func:`dub_video` wrote: the file, the music's start in the track (seconds),
    the output's length (the video's), and whether the video stream was re-encoded."""

    path: Path
    music: str
    music_start: float
    duration: float
    video_reencoded: bool


def fade_envelope(length: int, fade: int) -> np.ndarray:
    """(length,) gain: a raised-cosine rise over the first ``fade`` samples, 1 in the
    middle and the mirror fall over the last ``fade`` (shortened to fit short clips)."""
    gain = np.ones(length, dtype=np.float32)
    fade = min(fade, length // 2)
    if fade > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade, dtype=np.float64) + 0.5) / fade)
        gain[:fade] = ramp
        gain[length - fade :] = ramp[::-1]
    return gain


def music_start_for(match_start: float, track_duration: float, video_duration: float) -> float:
    """Where to start the track: at its best window, moved earlier when the track would
    end before the video does (never before 0)."""
    return max(0.0, min(match_start, track_duration - video_duration))


def estimate_tempo(onset: np.ndarray, frame_rate: float) -> float:
    """Tempo (BPM) of an onset envelope: the autocorrelation lag in ``TEMPO_RANGE`` with
    the highest autocorrelation, weighted by a log-normal prior around 120 BPM (one
    octave wide) that favours the usual beat level over its halves and doubles. 0 for a
    flat envelope. (librosa's ``tempo`` does the same but JIT-compiles for seconds.)"""
    centred = np.asarray(onset, dtype=np.float64) - np.mean(onset)
    n = centred.size
    if n < 4 or not np.any(centred):
        return 0.0
    spectrum = np.fft.rfft(centred, 2 * n)
    autocorr = np.fft.irfft(spectrum * np.conj(spectrum))[:n]
    lags = np.arange(1, n)
    bpm = 60.0 * frame_rate / lags
    valid = (bpm >= TEMPO_RANGE[0]) & (bpm <= TEMPO_RANGE[1])
    if not valid.any():
        return 0.0
    prior = np.exp(-0.5 * np.log2(bpm[valid] / 120.0) ** 2)
    return float(bpm[valid][np.argmax(autocorr[1:][valid] * prior)])


def beat_times(wave: np.ndarray, sample_rate: int = BEAT_RATE) -> np.ndarray:
    """Beat times (s) of mono ``wave``: spectral-flux onsets of its log-mel spectrogram,
    :func:`estimate_tempo`, then dynamic-programming beat tracking
    (:func:`crossmodal.encoders.music.beats.track_beats`)."""
    import torch

    from crossmodal.data.logmel import LogMel
    from crossmodal.data.specs import AudioSpec
    from crossmodal.encoders.music.beats import track_beats

    spec = AudioSpec(sample_rate=sample_rate, n_mels=64, n_fft=1024, hop_length=BEAT_HOP)
    with torch.no_grad():
        logmel = LogMel(spec)(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)))
    flux = torch.clamp(logmel[:, 1:] - logmel[:, :-1], min=0).mean(dim=0).numpy()
    onset = np.concatenate([[0.0], flux])
    frame_rate = sample_rate / BEAT_HOP
    tempo = estimate_tempo(onset, frame_rate)
    if tempo <= 0:
        return np.zeros(0)
    return track_beats(onset, 60.0 * frame_rate / tempo) / frame_rate


def snap_to_beat(
    music: str | os.PathLike[str], start: float, tolerance: float = 1.0, context: float = 6.0
) -> float:
    """``start`` moved to the nearest beat of ``music`` within ``tolerance`` s (the
    window search's half hop), so the music enters on a beat; ``start`` itself when no
    beat is that close. Only ``context`` s around ``start`` are decoded."""
    from crossmodal.data.audio import load_audio

    first = max(0.0, start - context)
    wave, offset = load_audio(music, BEAT_RATE, first, start + context)
    beats = beat_times(wave) + offset
    near = beats[np.abs(beats - start) <= tolerance]
    if near.size == 0:
        return start
    return max(0.0, float(near[np.argmin(np.abs(near - start))]))


def dub_video(
    video: str | os.PathLike[str],
    music: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    music_start: float = 0.0,
    keep_original: float = 0.0,
    fade: float = 0.5,
) -> DubResult:
    """Write ``out`` (mp4): ``video``'s pictures with ``music`` from ``music_start`` s.

    The music is trimmed to the video's length (silence after it if the track ends
    first), faded in and out over ``fade`` s, and mixed with the video's own sound at
    gain ``keep_original`` (0: music only; a video without sound is fine). The mix is
    scaled down if it would clip. Raises a :class:`~crossmodal.data.errors.MediaError`
    for an unreadable file or a "video" without pictures, :class:`CrossmodalError` for
    a bad argument.
    """
    from crossmodal.data.audio import load_audio
    from crossmodal.data.errors import NoStreamError
    from crossmodal.data.media_info import probe

    if not 0.0 <= keep_original <= 1.0:
        raise CrossmodalError(f"--keep-original must be in [0, 1], got {keep_original}")
    if fade < 0 or music_start < 0:
        raise CrossmodalError("fade and music start must be >= 0 s")
    info = probe(video)
    if not info.has_video:
        raise NoStreamError(video, "no video stream to put music on")
    duration = info.video_duration or info.duration
    if not duration:
        raise NoStreamError(video, "the video's duration is unknown")
    length = round(duration * SAMPLE_RATE)

    wave, offset = load_audio(music, SAMPLE_RATE, music_start, music_start + duration)
    first = max(0, round((music_start - offset) * SAMPLE_RATE))
    track = wave[first : first + length]
    mix = np.zeros(length, dtype=np.float32)
    mix[: len(track)] = track
    mix *= fade_envelope(length, round(fade * SAMPLE_RATE))
    if keep_original > 0 and info.has_audio:
        own, _ = load_audio(video, SAMPLE_RATE, 0.0, duration)  # streamed and resampled
        own = own[:length]
        mix[: len(own)] += keep_original * own
    peak = float(np.abs(mix).max(initial=0.0))
    if peak > PEAK:
        mix *= PEAK / peak

    reencode = not (info.video_codec == "h264" and _is_yuv420p(video))
    with atomic_path(out) as tmp:
        _write(Path(video), tmp, mix, reencode)
    return DubResult(Path(out), os.fspath(music), music_start, duration, reencode)


def dub_recommended(
    recommender: Recommender,
    video: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    rank: int = 1,
    keep_original: float = 0.0,
    fade: float = 0.5,
    matches: list[Match] | None = None,
    beat_snap: bool = True,
) -> tuple[Match, DubResult]:
    """Dub ``video`` with the track the recommender ranks ``rank`` (1 = best) for it,
    from that track's best-matching window (moved to its nearest beat when
    ``beat_snap``). ``matches``: an earlier ``recommend_music(video, k>=rank)`` answer
    to reuse instead of querying again."""
    if rank < 1:
        raise CrossmodalError(f"--rank must be >= 1, got {rank}")
    if matches is None:
        matches = recommender.recommend_music(video, k=rank)
    if len(matches) < rank:
        raise CrossmodalError(
            f"the index holds only {len(matches)} tracks: pick --rank {len(matches)} or lower"
        )
    match = matches[rank - 1]
    from crossmodal.data.media_info import probe

    info = probe(video)
    video_duration = info.video_duration or info.duration or 0.0
    track_duration = match.duration or probe(match.path).duration or 0.0
    start = snap_to_beat(match.path, match.start) if beat_snap else match.start
    start = music_start_for(start, track_duration, video_duration)
    result = dub_video(
        video, match.path, out, music_start=start, keep_original=keep_original, fade=fade
    )
    return match, result


def _is_yuv420p(path: str | os.PathLike[str]) -> bool:
    import av

    with av.open(os.fspath(path)) as container:
        return container.streams.video[0].codec_context.pix_fmt == "yuv420p"


def _write(video: Path, out: Path, mix: np.ndarray, reencode: bool) -> None:
    import av

    from crossmodal.data.writer import _encode_audio

    # Browsers start playing before the whole file arrives only with the index first.
    faststart = {"movflags": "+faststart"}
    with (
        av.open(str(video)) as source,
        av.open(str(out), "w", format="mp4", options=faststart) as target,
    ):
        src = source.streams.video[0]
        if reencode:
            dst = target.add_stream("libx264", rate=src.average_rate or Fraction(25))
            # H.264 in yuv420p needs even sizes.
            dst.width = src.codec_context.width // 2 * 2
            dst.height = src.codec_context.height // 2 * 2
            dst.pix_fmt = "yuv420p"
            dst.options = {"preset": "veryfast", "crf": "23"}
        else:
            dst = target.add_stream_from_template(src)
        audio = target.add_stream("aac", rate=SAMPLE_RATE)
        audio.layout = "mono"
        audio.codec_context.bit_rate = AUDIO_BIT_RATE
        for packet in source.demux(src):
            if reencode:
                for frame in packet.decode():
                    image = frame.reformat(dst.width, dst.height, "yuv420p")
                    image.pts, image.time_base = frame.pts, frame.time_base
                    target.mux(dst.encode(image))
            elif packet.dts is not None:
                packet.stream = dst
                target.mux(packet)
        if reencode:
            target.mux(dst.encode(None))
        _encode_audio(target, audio, mix[None, :], SAMPLE_RATE)
