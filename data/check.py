"""Find every problem in a manifest's media before training or indexing meets it.

A clip is checked for the role its manifest plays: "pairs" (training: a video and its
music, windows inside the clip), "music" (a music library: the music of each row) or
"video" (a video library). Each stream is decoded in full, the same way the indexer
decodes it, so a file the check passes is a file ``index`` takes. A stream that decodes
a little shorter than its header declares (within
:func:`~crossmodal.data.formats.shortfall_tolerance`) is a *note*, not a problem.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from crossmodal.data.errors import CorruptMediaError, MediaError, NoStreamError, TooShortError
from crossmodal.data.formats import shortfall_tolerance
from crossmodal.data.manifest import NO_SOUNDTRACK, ClipRecord, read_manifest, select_split
from crossmodal.data.media_info import probe
from crossmodal.data.specs import AudioSpec, VideoSpec
from crossmodal.data.windows import check_fits

ROLES = ("pairs", "music", "video")
# A stream shorter than its header by less than this is not worth a note (rounding).
NOTE_THRESHOLD = 0.05


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one clip: the file at fault and why (``kind``: error class).
    ``level`` "note": tolerated and reported (a stream a little shorter than declared)."""

    clip_id: str
    path: str
    reason: str
    kind: str
    level: str = "problem"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _problem(record: ClipRecord, err: MediaError) -> Problem:
    return Problem(record.id, err.path, err.reason, type(err).__name__)


def _decoded_end(path: Path, modality: str, video_spec: VideoSpec, audio_spec: AudioSpec) -> float:
    """Decode the whole stream as the indexer does (windows one hop = one window apart)
    and return where it ends."""
    from crossmodal.data.ingest import WindowJob, window_batches

    job = WindowJob(path, modality, video_spec, audio_spec, hop=float(audio_spec.seconds))
    end = 0.0
    for batch in window_batches(job):
        end = batch.end if batch.end is not None else end
    return end


def _short_end(path: Path, modality: str, video_spec: VideoSpec, audio_spec: AudioSpec) -> float:
    """Decoded end of a stream known to be shorter than one window (cheap to decode)."""
    from crossmodal.data.audio import stream_audio
    from crossmodal.data.video import VideoFile

    if modality == "video":
        return VideoFile(path, video_spec).end
    stream = stream_audio(path, audio_spec.sample_rate)
    for _ in stream:
        pass
    return stream.end


def _truncated(path: Path, modality: str, end: float, declared: float | None) -> None:
    """:class:`CorruptMediaError` when the stream decodes far shorter than declared."""
    if declared and declared - end > shortfall_tolerance(declared):
        what = "audio" if modality == "music" else "video"
        raise CorruptMediaError(
            path,
            f"{what} decodes to {end:.3f} s but the header declares {declared:.3f} s "
            "(truncated or corrupt file)",
        )


def _stream(
    record: ClipRecord,
    path: Path,
    modality: str,
    video_spec: VideoSpec,
    audio_spec: AudioSpec,
    out: list[Problem],
) -> float | None:
    """Decoded end of one stream, or None with its problem added to ``out``; a note when
    it ends within the tolerance before its declared duration."""
    try:
        info = probe(path)
        if modality == "music" and not info.has_audio:
            own = record.audio is None
            raise NoStreamError(path, NO_SOUNDTRACK if own else "no audio stream")
        declared = info.audio_duration if modality == "music" else info.video_duration
        try:
            end = _decoded_end(path, modality, video_spec, audio_spec)
        except TooShortError:
            # Shorter than a window: because it is, or because it was cut short?
            _truncated(path, modality, _short_end(path, modality, video_spec, audio_spec), declared)
            raise
        _truncated(path, modality, end, declared)
        shortfall = (declared or 0.0) - end
        what = "audio" if modality == "music" else "video"
        if shortfall > NOTE_THRESHOLD:
            out.append(
                Problem(
                    record.id,
                    str(path),
                    f"{what} decodes to {end:.3f} s, {shortfall:.3f} s short of the declared "
                    f"{declared:.3f} s (tolerated: windows stop at the decoded end)",
                    "Note",
                    "note",
                )
            )
        return end
    except MediaError as err:
        out.append(_problem(record, err))
        return None


def check_clip(job: tuple[ClipRecord, VideoSpec, AudioSpec, str]) -> list[Problem]:
    """Problems (and notes) of one clip in ``role``: each stream it needs decodes in
    full, and for "pairs" the clip's window fits in both. Module-level so that it can
    run isolated."""
    record, video_spec, audio_spec, role = job
    window = audio_spec.seconds
    out: list[Problem] = []
    video_end = music_end = None
    if role in ("pairs", "video"):
        if record.video is None:
            return [Problem(record.id, str(record.music), "the row has no video", "ManifestError")]
        video_end = _stream(record, record.video, "video", video_spec, audio_spec, out)
    broken_video = video_end is None and any(
        p.level == "problem" and p.kind != "NoStreamError" for p in out
    )
    # A soundtrack in a video that is itself unreadable would only repeat the video's error.
    if role in ("pairs", "music") and not (record.audio is None and broken_video):
        music_end = _stream(record, record.music, "music", video_spec, audio_spec, out)
    if role != "pairs" or video_end is None or music_end is None:
        return out
    try:
        if record.end is not None and record.end > video_end + shortfall_tolerance(video_end):
            raise TooShortError(
                record.video,
                f"video ends at {video_end:.3f} s, before the clip's end {record.end:.3f} s",
            )
        if record.end is None and music_end < record.start + window <= video_end:
            raise TooShortError(
                record.music,
                f"music lasts {music_end:.3f} s (video {video_end:.3f} s), too short for a "
                f"{window:g} s window from {record.start:.3f} s",
            )
        end = record.end if record.end is not None else min(video_end, music_end)
        check_fits(record.start, end, window, str(record.video))
    except MediaError as err:
        out.append(_problem(record, err))
    return out


def check_manifest(
    manifest: str | os.PathLike[str] | Sequence[ClipRecord],
    video_spec: VideoSpec | None = None,
    audio_spec: AudioSpec | None = None,
    *,
    role: str = "pairs",
    split: str | None = None,
    isolate: bool = True,
    timeout: float = 60.0,
    progress: bool = False,
) -> tuple[int, list[Problem]]:
    """Check every clip for ``role`` (see :func:`check_clip`); returns (clips checked,
    problems and notes).

    ``isolate=True`` decodes in a child process (:func:`~crossmodal.data.isolate.run_isolated`),
    so a decoder crash or hang becomes a problem of that clip ("decoder crashed (signal
    11)") instead of ending the check.
    """
    from tqdm import tqdm

    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    records = (
        list(manifest)
        if not isinstance(manifest, str | os.PathLike)
        else read_manifest(manifest, role)
    )
    records = select_split(records, split)
    video_spec = video_spec or VideoSpec()
    audio_spec = audio_spec or AudioSpec()
    jobs = [(r, video_spec, audio_spec, role) for r in records]
    problems: list[Problem] = []
    bar = tqdm(total=len(jobs), desc="check", unit="clip", disable=not progress)
    if isolate:
        from crossmodal.data.isolate import run_isolated

        for job, outcome in run_isolated(
            check_clip, jobs, path_of=lambda j: str(j[0].video or j[0].music), timeout=timeout
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
