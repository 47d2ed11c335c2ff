"""Media decoding, manifests, datasets, caching and the synthetic corpus
(installed as ``crossmodal.data``).

Everything downstream consumes media through the specs: an encoder declares a
:class:`VideoSpec` / :class:`AudioSpec`, and :class:`PairedClipDataset`,
:func:`load_video_windows` / :func:`load_audio_windows` decode accordingly; whole files
stream through :func:`crossmodal.data.ingest.ingest` as batches of windows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crossmodal.lazy import lazy_exports

if TYPE_CHECKING:
    from crossmodal.data.audio import (
        AudioStream,
        audio_window_batches,
        cut_windows,
        load_audio,
        load_audio_windows,
        represent,
        stream_audio,
    )
    from crossmodal.data.augment import ClipAugment
    from crossmodal.data.cache import FeatureCache, module_fingerprint
    from crossmodal.data.check import Problem, check_clip, check_manifest
    from crossmodal.data.dataset import PairedClipDataset
    from crossmodal.data.errors import (
        CorruptMediaError,
        DecoderCrashError,
        ManifestError,
        MediaError,
        MissingMediaError,
        NoStreamError,
        TooShortError,
    )
    from crossmodal.data.formats import scan_folder, shortfall_tolerance
    from crossmodal.data.ingest import WindowJob, window_batches
    from crossmodal.data.isolate import run_isolated
    from crossmodal.data.loader import make_loader, seed_worker
    from crossmodal.data.logmel import LogMel
    from crossmodal.data.manifest import ClipRecord, read_manifest, select_split, write_manifest
    from crossmodal.data.media_info import MediaInfo, probe
    from crossmodal.data.specaugment import SpecAugment
    from crossmodal.data.specs import AudioSpec, VideoSpec
    from crossmodal.data.video import (
        VideoFile,
        decode_segment,
        load_video_windows,
        normalize_frames,
        video_window_batches,
        window_frame_times,
    )
    from crossmodal.data.windows import (
        WindowBatch,
        centre_window,
        random_window,
        segment_windows,
        sliding_windows,
    )
    from crossmodal.data.writer import write_media

# Public name -> module defining it; resolved on first access (PEP 562) so that light
# imports such as ``crossmodal.data.specs`` do not pull in torch, decord and PyAV.
_EXPORTS = {
    "AudioSpec": "crossmodal.data.specs",
    "ClipAugment": "crossmodal.data.augment",
    "ClipRecord": "crossmodal.data.manifest",
    "CorruptMediaError": "crossmodal.data.errors",
    "DecoderCrashError": "crossmodal.data.errors",
    "FeatureCache": "crossmodal.data.cache",
    "LogMel": "crossmodal.data.logmel",
    "ManifestError": "crossmodal.data.errors",
    "MediaError": "crossmodal.data.errors",
    "MediaInfo": "crossmodal.data.media_info",
    "MissingMediaError": "crossmodal.data.errors",
    "NoStreamError": "crossmodal.data.errors",
    "PairedClipDataset": "crossmodal.data.dataset",
    "Problem": "crossmodal.data.check",
    "SpecAugment": "crossmodal.data.specaugment",
    "TooShortError": "crossmodal.data.errors",
    "VideoFile": "crossmodal.data.video",
    "VideoSpec": "crossmodal.data.specs",
    "centre_window": "crossmodal.data.windows",
    "check_clip": "crossmodal.data.check",
    "check_manifest": "crossmodal.data.check",
    "cut_windows": "crossmodal.data.audio",
    "decode_segment": "crossmodal.data.video",
    "load_audio": "crossmodal.data.audio",
    "load_audio_windows": "crossmodal.data.audio",
    "load_video_windows": "crossmodal.data.video",
    "make_loader": "crossmodal.data.loader",
    "module_fingerprint": "crossmodal.data.cache",
    "normalize_frames": "crossmodal.data.video",
    "probe": "crossmodal.data.media_info",
    "random_window": "crossmodal.data.windows",
    "read_manifest": "crossmodal.data.manifest",
    "represent": "crossmodal.data.audio",
    "stream_audio": "crossmodal.data.audio",
    "AudioStream": "crossmodal.data.audio",
    "audio_window_batches": "crossmodal.data.audio",
    "video_window_batches": "crossmodal.data.video",
    "WindowBatch": "crossmodal.data.windows",
    "WindowJob": "crossmodal.data.ingest",
    "window_batches": "crossmodal.data.ingest",
    "scan_folder": "crossmodal.data.formats",
    "shortfall_tolerance": "crossmodal.data.formats",
    "run_isolated": "crossmodal.data.isolate",
    "seed_worker": "crossmodal.data.loader",
    "segment_windows": "crossmodal.data.windows",
    "select_split": "crossmodal.data.manifest",
    "sliding_windows": "crossmodal.data.windows",
    "window_frame_times": "crossmodal.data.video",
    "write_manifest": "crossmodal.data.manifest",
    "write_media": "crossmodal.data.writer",
}

__all__ = [
    "AudioSpec",
    "AudioStream",
    "ClipAugment",
    "ClipRecord",
    "CorruptMediaError",
    "DecoderCrashError",
    "FeatureCache",
    "LogMel",
    "ManifestError",
    "MediaError",
    "MediaInfo",
    "MissingMediaError",
    "NoStreamError",
    "PairedClipDataset",
    "Problem",
    "SpecAugment",
    "TooShortError",
    "VideoFile",
    "VideoSpec",
    "WindowBatch",
    "WindowJob",
    "audio_window_batches",
    "centre_window",
    "check_clip",
    "check_manifest",
    "cut_windows",
    "decode_segment",
    "load_audio",
    "load_audio_windows",
    "load_video_windows",
    "make_loader",
    "module_fingerprint",
    "normalize_frames",
    "probe",
    "random_window",
    "read_manifest",
    "represent",
    "run_isolated",
    "scan_folder",
    "seed_worker",
    "segment_windows",
    "select_split",
    "shortfall_tolerance",
    "sliding_windows",
    "stream_audio",
    "video_window_batches",
    "window_batches",
    "window_frame_times",
    "write_manifest",
    "write_media",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
