"""``PairedClipDataset``: the same time window of a clip's video and of its music."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from crossmodal.data.audio import (
    AUDIO_DECODER,
    LENGTH_TOLERANCE,
    cut_windows,
    load_audio,
    represent,
)
from crossmodal.data.augment import ClipAugment
from crossmodal.data.cache import FeatureCache
from crossmodal.data.errors import ManifestError, MediaError, NoStreamError
from crossmodal.data.formats import shortfall_tolerance
from crossmodal.data.manifest import NO_SOUNDTRACK, ClipRecord, read_manifest, select_split
from crossmodal.data.media_info import probe
from crossmodal.data.specaugment import SpecAugment
from crossmodal.data.specs import AudioSpec, VideoSpec
from crossmodal.data.video import (
    VideoFile,
    decode_segment,
    frames_from_segment,
    normalize_frames,
    window_frame_times,
)
from crossmodal.data.windows import centre_window, check_fits, random_window, segment_windows

log = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]


class PairedClipDataset(Dataset):
    """Clips of a manifest as aligned (video, music) windows.

    The window lasts ``audio_spec.seconds``. Video: ``video_spec.num_frames`` frames in
    it (see :func:`~crossmodal.data.video.window_frame_times`), decoded at the spec's
    size. Music: the same window of the clip's music, mono at the spec's rate, as a
    waveform or a log-mel per ``audio_spec.representation``.

    ``train=True``: a uniformly random window inside [start, end] per access; the music
    window moves by U(-jitter, +jitter) seconds from the video's (kept inside the clip);
    ``spec_augment`` and ``augment``'s music transforms (log-mel only) and its frame
    transforms (:class:`~crossmodal.data.augment.ClipAugment`) are applied. ``train=False``: fixed windows,
    ``eval_windows="centre"`` (default) or ``"start"`` (one item per clip), or an int n
    (n evenly spaced windows, n items per clip, clip-major order).

    Items are dicts ``{"video": float (3, T, H, W) normalised per video_spec, "audio":
    float (S,) or (n_mels, frames), "track": int, "label": int (-1 when unlabelled),
    "id": str, "start": float (video window start, s)}``; the default collate stacks
    them. Vocabularies: ``track_ids`` (sorted track ids of this split; "track" indexes
    it) and ``labels`` (sorted labels of the whole manifest so that every split indexes
    alike; pass ``labels`` to fix them). ``track_index(i)`` / ``label_index(i)`` and the
    ``track_indices`` / ``label_indices`` arrays answer without decoding (for samplers).

    ``cache``: a :class:`FeatureCache` (or its folder), so that later epochs decode
    nothing. A window that never moves (evaluation; training on a clip exactly one window
    long, without jitter) is kept finished: its uint8 frames and its waveform or log-mel.
    Otherwise the clip's decoded frames (every frame in [start, end] at the spec's size)
    and its resampled music are kept, and each random window is cut from them exactly as
    from the files (its log-mel is computed per access).

    ``decode_threads``: the video decoder's threads (1 suits DataLoader workers).

    Streams may end a little before their headers say (see
    :func:`~crossmodal.data.formats.shortfall_tolerance`): a window reaching into that
    gap holds the last frame and pads the music with silence.

    ``on_error="raise"``: a :class:`MediaError` (naming file and reason) propagates.
    ``"skip"``: it is logged as a warning and another clip is returned instead, of the
    same track if there is one, else of the same label, else any; the bad clip is not
    tried again in this process. Never a zero-filled stand-in.
    """

    def __init__(
        self,
        manifest: str | os.PathLike[str] | Sequence[ClipRecord],
        video_spec: VideoSpec,
        audio_spec: AudioSpec,
        *,
        split: str | None = None,
        train: bool = False,
        jitter: float = 0.0,
        eval_windows: Literal["centre", "start"] | int = "centre",
        spec_augment: SpecAugment | None = None,
        augment: ClipAugment | None = None,
        cache: FeatureCache | str | os.PathLike[str] | None = None,
        on_error: OnError = "raise",
        labels: Sequence[str] | None = None,
        decode_threads: int = 1,
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if jitter < 0:
            raise ValueError(f"jitter must be >= 0, got {jitter}")
        if not (
            eval_windows in ("centre", "start")
            or (isinstance(eval_windows, int) and eval_windows >= 1)
        ):
            raise ValueError(
                f"eval_windows must be 'centre', 'start' or a positive int, got {eval_windows!r}"
            )
        all_records = (
            list(manifest)
            if not isinstance(manifest, str | os.PathLike)
            else read_manifest(manifest)
        )
        self.records: list[ClipRecord] = select_split(all_records, split)
        without_video = [r.id for r in self.records if r.video is None]
        if without_video:
            raise ManifestError(
                f"{len(without_video)} clip(s) have no video (e.g. {without_video[0]!r}): "
                "training pairs a video with its music; give every row a 'video'"
            )
        self.video_spec = video_spec
        self.audio_spec = audio_spec
        self.window = float(audio_spec.seconds)
        self.split = split
        self.train = train
        self.jitter = float(jitter)
        self.eval_windows = eval_windows
        self.spec_augment = spec_augment
        self.augment = augment if augment is not None and augment.active else None
        self.cache = FeatureCache(cache) if isinstance(cache, str | os.PathLike) else cache
        self.on_error = on_error
        self.decode_threads = decode_threads
        # Names the audio decoding in cache keys (features from another decoder differ).
        self.audio_backend = AUDIO_DECODER
        self.segments = eval_windows if (not train and isinstance(eval_windows, int)) else 1

        self.labels: list[str] = (
            list(labels)
            if labels is not None
            else sorted({r.label for r in all_records if r.label is not None})
        )
        self.track_ids: list[str] = sorted({r.track_id for r in self.records})
        label_pos = {name: k for k, name in enumerate(self.labels)}
        track_pos = {name: k for k, name in enumerate(self.track_ids)}
        self._clip_tracks = np.array([track_pos[r.track_id] for r in self.records], dtype=np.int64)
        self._clip_labels = np.array(
            [label_pos.get(r.label, -1) if r.label is not None else -1 for r in self.records],
            dtype=np.int64,
        )
        unknown = sorted(
            {r.label for r in self.records if r.label is not None and r.label not in label_pos}
        )
        if unknown:
            raise ValueError(f"labels {unknown} of the manifest are missing from the given labels")
        self._ends: dict[int, float] = {}
        self._bad: set[int] = set()

    # -- vocabulary, without decoding ---------------------------------------------------
    def __len__(self) -> int:
        return len(self.records) * self.segments

    def clip_index(self, index: int) -> int:
        """Index into ``records`` of item ``index``."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        return (index % len(self)) // self.segments

    def record(self, index: int) -> ClipRecord:
        return self.records[self.clip_index(index)]

    def track_index(self, index: int) -> int:
        return int(self._clip_tracks[self.clip_index(index)])

    def label_index(self, index: int) -> int:
        return int(self._clip_labels[self.clip_index(index)])

    @property
    def track_indices(self) -> np.ndarray:
        """(len,) track index of every item."""
        return np.repeat(self._clip_tracks, self.segments)

    @property
    def label_indices(self) -> np.ndarray:
        """(len,) label index of every item (-1: unlabelled)."""
        return np.repeat(self._clip_labels, self.segments)

    # -- loading ------------------------------------------------------------------------
    def __getitem__(self, index: int) -> dict[str, Any]:
        clip = self.clip_index(index)
        segment = (index % len(self)) % self.segments
        if clip in self._bad and self.on_error == "skip":
            return self._substitute(clip, segment)
        try:
            return self._load(clip, segment)
        except MediaError as err:
            if self.on_error == "raise":
                raise
            log.warning("skipping clip %r: %s", self.records[clip].id, err)
            self._bad.add(clip)
            return self._substitute(clip, segment)

    def _candidates(self, clip: int) -> Iterator[int]:
        n = len(self.records)
        order = [(clip + k) % n for k in range(1, n)]
        track, label = self._clip_tracks[clip], self._clip_labels[clip]
        yield from (c for c in order if self._clip_tracks[c] == track)
        if label >= 0:
            yield from (
                c for c in order if self._clip_labels[c] == label and self._clip_tracks[c] != track
            )
        yield from (
            c
            for c in order
            if self._clip_tracks[c] != track and (label < 0 or self._clip_labels[c] != label)
        )

    def _substitute(self, clip: int, segment: int) -> dict[str, Any]:
        for other in self._candidates(clip):
            if other in self._bad:
                continue
            try:
                return self._load(other, segment)
            except MediaError as err:
                log.warning("skipping clip %r: %s", self.records[other].id, err)
                self._bad.add(other)
        raise MediaError(self.records[clip].video, "no valid clip left to substitute for it")

    def _end(self, clip: int) -> float:
        record = self.records[clip]
        if record.end is not None:
            return record.end
        if clip not in self._ends:
            video = probe(record.video)
            ends = [video.video_duration or video.duration]
            if record.audio is not None:
                music = probe(record.audio)
                ends.append(music.audio_duration or music.duration)
            else:
                ends.append(video.audio_duration)
            known = [e for e in ends if e]
            if not known:
                raise MediaError(record.video, "duration unknown (no duration in the header)")
            self._ends[clip] = min(known)
        return self._ends[clip]

    def _tolerance(self, clip: int) -> float:
        """Seconds the music may end before the clip's end and be padded with silence: the
        header-shortfall tolerance when the end comes from the headers; a few samples when
        the manifest sets it (a clip must not reach past its media)."""
        if self.records[clip].end is not None:
            return LENGTH_TOLERANCE
        return shortfall_tolerance(self._end(clip))

    def window_starts(self, index: int) -> tuple[float, float]:
        """(video, music) window starts of item ``index``; random when ``train``."""
        clip = self.clip_index(index)
        record = self.records[clip]
        start, end = record.start, self._end(clip)
        check_fits(start, end, self.window, str(record.video))
        if self.train:
            video_start = random_window(start, end, self.window)
            music_start = video_start
            if self.jitter > 0:
                shift = (2 * float(torch.rand(())) - 1) * self.jitter
                music_start = min(max(video_start + shift, start), end - self.window)
            return video_start, music_start
        if self.eval_windows == "start":
            return start, start
        if self.eval_windows == "centre":
            fixed = centre_window(start, end, self.window)
            return fixed, fixed
        fixed = float(
            segment_windows(start, end, self.window, self.segments)[
                (index % len(self)) % self.segments
            ]
        )
        return fixed, fixed

    def _load(self, clip: int, segment: int) -> dict[str, Any]:
        record = self.records[clip]
        video_start, music_start = self.window_starts(clip * self.segments + segment)
        if self.cache is not None and self._fixed_window(clip):
            window = self.cache.get_or_compute(
                record.video,
                self._window_params(record, video_start, music_start),
                lambda: self._decode_window(clip, video_start, music_start),
            )
            frames, audio = window["frames"], torch.from_numpy(window["audio"])
        else:
            frames = self._frames(clip, video_start)
            audio = represent(self._music(clip, music_start), self.audio_spec)[0]
        if self.train and self.augment is not None:
            frames = self.augment.frames(np.asarray(frames))
            if self.audio_spec.representation == "logmel":
                audio = self.augment.logmel(audio)
            else:
                audio = self.augment.waveform(audio, self.audio_spec.sample_rate)
        if (
            self.train
            and self.spec_augment is not None
            and self.audio_spec.representation == "logmel"
        ):
            audio = self.spec_augment(audio)
        return {
            "video": normalize_frames(frames, self.video_spec),
            "audio": audio,
            "track": int(self._clip_tracks[clip]),
            "label": int(self._clip_labels[clip]),
            "id": record.id,
            "start": float(video_start),
        }

    def _fixed_window(self, clip: int) -> bool:
        """Whether this clip's window never moves (evaluation, or a clip exactly one
        window long without jitter): then the cache keeps the finished window."""
        if not self.train:
            return True
        record = self.records[clip]
        return self.jitter == 0 and self._end(clip) - record.start - self.window <= 1e-9

    def _window_params(
        self, record: ClipRecord, video_start: float, music_start: float
    ) -> dict[str, Any]:
        assert self.cache is not None
        return {
            "kind": "window",
            "video": {
                "height": self.video_spec.height,
                "width": self.video_spec.width,
                "num_frames": self.video_spec.num_frames,
                "fps": self.video_spec.fps,
            },
            "audio": self.audio_spec.to_dict(),
            "decoder": self.audio_backend,
            "window": self.window,
            "video_start": video_start,
            "music_start": music_start,
            # The key is the video file's; a separate music file must be part of it too.
            "music_file": None if record.audio is None else self.cache.fingerprint(record.audio),
        }

    def _decode_window(
        self, clip: int, video_start: float, music_start: float
    ) -> dict[str, np.ndarray]:
        record = self.records[clip]
        times = window_frame_times(self.video_spec, video_start, self.window)
        frames = VideoFile(record.video, self.video_spec, self.decode_threads).frames_at(times)
        wave, offset = load_audio(
            record.music, self.audio_spec.sample_rate, music_start, music_start + self.window
        )
        cut = cut_windows(
            wave,
            self.audio_spec.sample_rate,
            offset,
            [music_start],
            self.audio_spec.num_samples,
            record.music,
            self._tolerance(clip),
        )
        return {"frames": frames, "audio": represent(cut, self.audio_spec)[0].numpy()}

    def _frames(self, clip: int, window_start: float) -> np.ndarray:
        record = self.records[clip]
        times = window_frame_times(self.video_spec, window_start, self.window)
        if self.cache is None:
            return VideoFile(record.video, self.video_spec, self.decode_threads).frames_at(times)
        end = self._end(clip)
        params = {
            "kind": "video-frames",
            "height": self.video_spec.height,
            "width": self.video_spec.width,
            "start": record.start,
            "end": end,
        }

        def compute() -> dict[str, np.ndarray]:
            frames, starts = decode_segment(
                record.video, self.video_spec, record.start, end, self.decode_threads
            )
            return {"frames": frames, "starts": starts}

        seg = self.cache.get_or_compute(record.video, params, compute)
        return frames_from_segment(seg["frames"], seg["starts"], times, str(record.video))

    def _music(self, clip: int, window_start: float) -> np.ndarray:
        record = self.records[clip]
        try:
            return self._decode_music(clip, window_start)
        except NoStreamError as err:
            if record.audio is None:
                raise NoStreamError(err.path, NO_SOUNDTRACK) from err
            raise

    def _decode_music(self, clip: int, window_start: float) -> np.ndarray:
        record = self.records[clip]
        sr = self.audio_spec.sample_rate
        n = self.audio_spec.num_samples
        if self.cache is None:
            wave, offset = load_audio(record.music, sr, window_start, window_start + self.window)
            return cut_windows(
                wave, sr, offset, [window_start], n, record.music, self._tolerance(clip)
            )
        end = self._end(clip)
        params = {
            "kind": "music",
            "sample_rate": sr,
            "start": record.start,
            "end": end,
            "decoder": self.audio_backend,
        }

        def compute() -> dict[str, np.ndarray]:
            wave, offset = load_audio(record.music, sr, record.start, end)
            # Keep the clip's span, plus 10 ms so rounding at its end cannot cut a window.
            first = max(0, round((record.start - offset) * sr))
            last = round((end - offset) * sr) + sr // 100
            return {"wave": wave[first:last], "offset": np.float64(offset + first / sr)}

        seg = self.cache.get_or_compute(record.music, params, compute)
        return cut_windows(
            seg["wave"],
            sr,
            float(seg["offset"]),
            [window_start],
            n,
            record.music,
            self._tolerance(clip),
        )

    def __repr__(self) -> str:
        mode = "train" if self.train else f"eval:{self.eval_windows}"
        return (
            f"PairedClipDataset({len(self.records)} clips, split={self.split!r}, {mode}, "
            f"window={self.window:g}s, tracks={len(self.track_ids)}, labels={len(self.labels)})"
        )
