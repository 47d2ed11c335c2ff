"""Find every problem in a manifest's media before training meets it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from crossmodal.data.audio import AudioBackend, cut_windows, load_audio
from crossmodal.data.errors import MediaError, NoStreamError, TooShortError
from crossmodal.data.manifest import NO_SOUNDTRACK, ClipRecord, read_manifest, select_split
from crossmodal.data.media_info import probe
from crossmodal.data.specs import AudioSpec, VideoSpec
from crossmodal.data.video import VideoFile, window_frame_times
from crossmodal.data.windows import check_fits


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one clip: the file at fault and why (``kind``: error class)."""

    clip_id: str
    path: str
    reason: str
    kind: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _problem(record: ClipRecord, err: MediaError) -> Problem:
    return Problem(record.id, err.path, err.reason, type(err).__name__)


def check_clip(
    job: tuple[ClipRecord, VideoSpec, AudioSpec, AudioBackend],
) -> list[Problem]:
    """Problems of one clip: its video (probe, frames of its first and last window), its
    music (an audio stream that decodes to finite samples covering the clip) and whether
    the window fits in the clip. Module-level so that it can run isolated."""
    record, video_spec, audio_spec, backend = job
    window, sr = audio_spec.seconds, audio_spec.sample_rate
    problems: list[Problem] = []
    video = None
    try:
        video = VideoFile(record.video, video_spec)
    except MediaError as err:
        problems.append(_problem(record, err))

    # A soundtrack in a video that is itself unreadable would only repeat the video's error.
    own_soundtrack_of_broken_file = (
        record.audio is None and bool(problems) and problems[0].kind != "NoStreamError"
    )
    wave, offset = None, 0.0
    if not own_soundtrack_of_broken_file:
        try:
            if not probe(record.music).has_audio:
                raise NoStreamError(
                    record.music, NO_SOUNDTRACK if record.audio is None else "no audio stream"
                )
            wave, offset = load_audio(record.music, sr, record.start, record.end, backend)
        except MediaError as err:
            problems.append(_problem(record, err))
    if problems or video is None or wave is None:
        return problems

    music_end = offset + len(wave) / sr
    end = record.end if record.end is not None else min(video.end, music_end)
    try:
        if record.end is None and music_end < record.start + window <= video.end:
            raise TooShortError(
                record.music,
                f"music lasts {music_end:.3f} s (video {video.end:.3f} s), too short for a "
                f"{window:g} s window from {record.start:.3f} s",
            )
        check_fits(record.start, end, window, str(record.video))
        starts = np.unique([record.start, end - window])
        for start in starts:
            video.frames_at(window_frame_times(video_spec, float(start), window))
        cut_windows(wave, sr, offset, starts, audio_spec.num_samples, record.music)
    except MediaError as err:
        problems.append(_problem(record, err))
    return problems


def check_manifest(
    manifest: str | os.PathLike[str] | Sequence[ClipRecord],
    video_spec: VideoSpec | None = None,
    audio_spec: AudioSpec | None = None,
    *,
    split: str | None = None,
    isolate: bool = True,
    timeout: float = 60.0,
    audio_backend: AudioBackend = "decord",
    progress: bool = False,
) -> tuple[int, list[Problem]]:
    """Check every clip (see :func:`check_clip`); returns (clips checked, problems).

    ``isolate=True`` decodes in a child process (:func:`~crossmodal.data.isolate.run_isolated`),
    so a decoder crash or hang becomes a problem of that clip ("decoder crashed (signal
    11)") instead of ending the check.
    """
    from tqdm import tqdm

    records = (
        list(manifest) if not isinstance(manifest, str | os.PathLike) else read_manifest(manifest)
    )
    records = select_split(records, split)
    video_spec = video_spec or VideoSpec()
    audio_spec = audio_spec or AudioSpec()
    jobs = [(r, video_spec, audio_spec, audio_backend) for r in records]
    problems: list[Problem] = []
    bar = tqdm(total=len(jobs), desc="check", unit="clip", disable=not progress)
    if isolate:
        from crossmodal.data.isolate import run_isolated

        for job, outcome in run_isolated(
            check_clip, jobs, path_of=lambda j: str(j[0].video), timeout=timeout
        ):
            if isinstance(outcome, MediaError):
                problems.append(_problem(job[0], outcome))
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                problems.extend(outcome)
            bar.update()
    else:
        for job in jobs:
            problems.extend(check_clip(job))
            bar.update()
    bar.close()
    return len(records), problems
