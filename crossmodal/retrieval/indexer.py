"""Embed media libraries with a trained model into an :class:`IndexStore`.

Each file is cut into windows of the model's clip length (``hop`` apart; a file
exactly one window long gives one window), every window is embedded, and the file is
catalogued with its windows' start/end times. Unchanged files (same size, mtime and
content checksum) are skipped, changed ones re-embedded, and with ``prune`` files no
longer in the library are dropped. Files that cannot be decoded are listed in the
result and left out; the rest are indexed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from crossmodal.errors import CrossmodalError
from crossmodal.fileio import atomic_path
from crossmodal.logging_utils import progress_disabled
from crossmodal.retrieval.index_params import IndexParams
from crossmodal.retrieval.records import ItemMeta
from crossmodal.retrieval.store import IndexStore

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus")
MODELS_DIR = "models"


@dataclass
class LibraryFile:
    """A file to index: its path and, from a manifest, its label and clip id."""

    path: Path
    label: str | None = None
    clip_id: str | None = None


@dataclass
class IndexReport:
    added: dict[str, int] = field(default_factory=lambda: {"music": 0, "video": 0})
    unchanged: dict[str, int] = field(default_factory=lambda: {"music": 0, "video": 0})
    removed: dict[str, int] = field(default_factory=lambda: {"music": 0, "video": 0})
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (modality, path, reason)
    version: str | None = None


def library_files(
    source: str | os.PathLike[str], modality: str, split: str | None = None
) -> list[LibraryFile]:
    """The files of a library: a folder (searched recursively by extension) or a manifest.

    Music from a folder: audio files and videos (their soundtracks). Music from a
    manifest: each clip's ``audio`` file, or its video's soundtrack when ``audio`` is null.
    """
    source = Path(source)
    if source.is_dir():
        extensions = VIDEO_EXTENSIONS + (AUDIO_EXTENSIONS if modality == "music" else ())
        files = sorted(
            p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in extensions
        )
        if not files:
            kinds = "audio or video" if modality == "music" else "video"
            raise CrossmodalError(f"{source} holds no {kinds} files to index")
        return [LibraryFile(p) for p in files]
    if not source.is_file():
        raise CrossmodalError(f"library {source} is neither a folder nor a manifest file")
    from crossmodal.data import read_manifest

    records = read_manifest(source)
    if split is not None:
        records = [r for r in records if r.split == split]
    if not records:
        raise CrossmodalError(
            f"manifest {source} has no clips{f' in split {split!r}' if split else ''}"
        )
    seen: dict[Path, LibraryFile] = {}
    for record in records:
        path = Path(record.music if modality == "music" else record.video)
        seen.setdefault(path, LibraryFile(path, record.label, record.id))
    return list(seen.values())


def model_path_in_store(index_dir: str | os.PathLike[str], fingerprint: str) -> Path:
    """Where an index keeps a copy of the model that built it (queries need it)."""
    return Path(index_dir) / MODELS_DIR / f"{fingerprint[:32]}.pt"


class Indexer:
    """Embeds files window by window with ``model`` and writes them to ``index_dir``."""

    def __init__(
        self,
        model: torch.nn.Module,
        index_dir: str | os.PathLike[str],
        *,
        hop: float | None = None,
        batch_size: int = 32,
        device: torch.device | str = "cpu",
    ) -> None:
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.index_dir = Path(index_dir)
        self.window = float(model.audio_spec.seconds)
        self.hop = float(hop) if hop else self.window / 2
        if self.hop <= 0:
            raise CrossmodalError(f"hop must be > 0 seconds, got {hop}")
        self.batch_size = batch_size
        self.fingerprint = model.fingerprint()

    # -- embedding one file ------------------------------------------------------------
    def windows_of(self, path: Path) -> tuple[float, np.ndarray]:
        """(duration, window starts) of a file for this model's window and hop."""
        from crossmodal.data.errors import TooShortError
        from crossmodal.data.media_info import probe

        info = probe(path)
        duration = info.duration or 0.0
        if duration + 1e-3 < self.window:
            raise TooShortError(
                path, f"lasts {duration:.2f} s, shorter than the model's {self.window:.2f} s window"
            )
        last = max(duration - self.window, 0.0)
        count = int(np.floor(last / self.hop + 1e-6)) + 1
        starts = np.arange(count) * self.hop
        if last - starts[-1] > 0.25 * self.hop:
            starts = np.append(starts, last)  # cover the tail of the file too
        return duration, starts

    @torch.no_grad()
    def embed_file(self, path: Path, modality: str) -> tuple[float, np.ndarray, np.ndarray]:
        """(duration, window starts, (W, D) float32 embeddings) of one file."""
        from crossmodal.data import load_audio_windows, load_video_windows

        duration, starts = self.windows_of(path)
        rows = []
        for i in range(0, len(starts), self.batch_size):
            chunk = starts[i : i + self.batch_size]
            if modality == "video":
                frames = load_video_windows(path, self.model.video_spec, chunk, self.window)
                rows.append(self.model.encode("video", frames.to(self.device)).float().cpu())
            else:
                audio = load_audio_windows(path, self.model.audio_spec, chunk)
                rows.append(self.model.encode("music", audio.to(self.device)).float().cpu())
        vectors = np.ascontiguousarray(torch.cat(rows).numpy(), dtype=np.float32)
        return duration, starts, vectors

    # -- a whole update -------------------------------------------------------------------
    def index(
        self,
        libraries: dict[str, Sequence[LibraryFile]],
        *,
        rebuild: bool = False,
        prune: bool = False,
        params: IndexParams | None = None,
    ) -> IndexReport:
        """Add/refresh the files of each modality's library; one atomic store version."""
        from crossmodal.data.errors import MediaError

        report = IndexReport()
        store = IndexStore(self.index_dir)
        dim = int(self.model.embed_dim)
        with store.begin_update(self.fingerprint, dim, rebuild=rebuild, params=params) as update:
            self._save_model()
            for modality, files in libraries.items():
                bar = tqdm(
                    files, desc=f"indexing {modality}", unit="file", disable=progress_disabled()
                )
                for entry in bar:
                    path = entry.path
                    try:
                        st = path.stat()
                    except OSError as err:
                        report.failed.append((modality, str(path), f"cannot read: {err.strerror}"))
                        continue
                    if not update.needs_embedding(
                        path, st.st_size, st.st_mtime, None, modality=modality
                    ):
                        report.unchanged[modality] += 1
                        continue
                    try:
                        duration, starts, vectors = self.embed_file(path, modality)
                    except MediaError as err:
                        report.failed.append((modality, str(path), err.reason))
                        continue
                    meta = ItemMeta.from_file(
                        path,
                        duration=duration,
                        label=entry.label,
                        extra={"clip_id": entry.clip_id} if entry.clip_id else None,
                    )
                    windows = [(float(s), float(min(s + self.window, duration))) for s in starts]
                    update.add_item(modality, path, meta, windows, vectors)
                    report.added[modality] += 1
                if prune:
                    removed = update.remove_missing([f.path for f in files], modality=modality)
                    report.removed[modality] = len(removed)
            info = update.commit()
        report.version = info.version
        return report

    def _save_model(self) -> None:
        target = model_path_in_store(self.index_dir, self.fingerprint)
        if target.is_file():
            return
        with atomic_path(target) as tmp:
            self.model.save(tmp)


def describe_failures(failed: Iterable[tuple[str, str, str]]) -> str:
    return "\n".join(f"  [{modality}] {path}: {reason}" for modality, path, reason in failed)
