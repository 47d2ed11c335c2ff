"""Embed media libraries with a trained model into an :class:`IndexStore`.

Each file is decoded once, as a stream, and cut into windows of the model's clip length
(``hop`` apart, placed on the decoded stream so the last window ends at its decoded end;
a file exactly one window long gives one window); windows are embedded a batch at a time
as the decoder goes (``workers`` decoding processes, or this one), and the file is
catalogued with its windows' start/end times. Unchanged files (same size, mtime and
content checksum) are skipped, changed ones re-embedded, and with ``prune`` files no
longer in the library are dropped. Files that cannot be decoded are listed in the
result and left out; the rest are indexed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from crossmodal.errors import CrossmodalError
from crossmodal.fileio import NOT_UTF8_NAME, atomic_path, utf8_name
from crossmodal.logging_utils import printable, progress_bars
from crossmodal.retrieval.checksum import file_signature
from crossmodal.retrieval.index_params import IndexParams
from crossmodal.retrieval.layout import MODELS_DIR
from crossmodal.retrieval.limits import MAX_WINDOWS_PER_FILE, check_hop, min_hop_for
from crossmodal.retrieval.records import ItemMeta
from crossmodal.retrieval.store import IndexStore

if TYPE_CHECKING:
    from crossmodal.tagging import Tagger

log = logging.getLogger(__name__)


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
    # Files that failed in an earlier run and have not changed since: skipped, not retried.
    known_bad: list[tuple[str, str, str]] = field(default_factory=list)
    version: str | None = None
    published: bool = False  # False: nothing changed, ``version`` is the current one


def library_files(
    source: str | os.PathLike[str], modality: str, split: str | None = None
) -> list[LibraryFile]:
    """The files of a library: a folder (searched recursively) or a manifest.

    Music from a folder: audio files and videos (their soundtracks), every extension of
    :data:`crossmodal.data.formats.MUSIC_EXTENSIONS`; videos: those of ``VIDEO_EXTENSIONS``.
    What the scan leaves out is logged as a warning, with the reason. Music from a
    manifest: each row's ``audio`` file, or its video's soundtrack when ``audio`` is null;
    videos: each row's ``video`` (rows without one are logged and left out).
    """
    from crossmodal.data.formats import scan_folder

    source = Path(source)
    if source.is_dir():
        scan = scan_folder(source, modality)
        if scan.skipped:
            log.warning("%s: %s", source, scan.describe_skipped())
        if not scan.files:
            kinds = "audio or video" if modality == "music" else "video"
            raise CrossmodalError(f"{source} holds no {kinds} files to index")
        return [LibraryFile(p) for p in scan.files]
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
    without_video = [r.id for r in records if modality == "video" and r.video is None]
    if without_video:
        log.warning(
            "%s: %d row(s) have no video and are left out of the video library (e.g. %r)",
            source,
            len(without_video),
            without_video[0],
        )
    for record in records:
        path = record.music if modality == "music" else record.video
        if path is not None:
            seen.setdefault(Path(path), LibraryFile(Path(path), record.label, record.id))
    if not seen:
        raise CrossmodalError(f"manifest {source} lists no {modality} files")
    return list(seen.values())


def model_path_in_store(index_dir: str | os.PathLike[str], fingerprint: str) -> Path:
    """Where an index keeps a copy of the model that built it (queries need it)."""
    return Path(index_dir) / MODELS_DIR / f"{fingerprint[:32]}.pt"


@dataclass
class EmbeddedFile:
    """One embedded file: its decoded ``duration`` (s), window ``starts`` (s), (W, D)
    float32 ``vectors``, and whether it was ``padded`` to one window (shorter files)."""

    duration: float
    starts: np.ndarray
    vectors: np.ndarray
    padded: bool = False


def _reason(err: Exception) -> str:
    return getattr(err, "reason", None) or str(err)


class Indexer:
    """Embeds files window by window with ``model`` and writes them to ``index_dir``
    (``workers``: decoding processes, 0 decodes in this one).

    With a ``tagger``, each music item's tag probabilities (whole track, windows averaged)
    are kept in the catalog, in the item's ``extra["tags"]`` (:meth:`TrackTags.to_json`).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        index_dir: str | os.PathLike[str],
        *,
        hop: float | None = None,
        batch_size: int = 32,
        device: torch.device | str = "cpu",
        workers: int = 0,
        tagger: Tagger | None = None,
    ) -> None:
        self.model = model.eval().to(device)
        self.tagger = tagger
        self.device = torch.device(device)
        self.index_dir = Path(index_dir)
        self.window = float(model.audio_spec.seconds)
        try:
            self.hop = check_hop(self.window / 2 if hop is None else float(hop), self.window)
        except ValueError as err:
            raise CrossmodalError(str(err)) from None
        self.batch_size = batch_size
        self.workers = workers
        self.fingerprint = model.fingerprint()

    # -- embedding files ----------------------------------------------------------------
    def jobs(
        self, paths: Sequence[Path], modality: str, min_seconds: float | None = None
    ) -> list[Any]:
        """One :class:`~crossmodal.data.ingest.WindowJob` per file, for this model."""
        from crossmodal.data.ingest import WindowJob

        return [
            WindowJob(
                Path(path),
                modality,
                self.model.video_spec,
                self.model.audio_spec,
                self.hop,
                self.batch_size,
                min_seconds,
            )
            for path in paths
        ]

    def _encode(self, modality: str, inputs: torch.Tensor) -> torch.Tensor:
        return self.model.encode(modality, inputs.to(self.device)).float().cpu()

    @torch.no_grad()
    def embed_files(
        self, paths: Sequence[Path], modality: str, min_seconds: float | None = None
    ) -> Iterator[tuple[int, EmbeddedFile | Exception]]:
        """``(position in paths, result)`` per file, in the order of ``paths``: an
        :class:`EmbeddedFile`, or the :class:`MediaError` that stopped it. Each file is
        decoded once, as a stream; its windows are embedded batch by batch as they come
        (``self.workers`` decoding processes, 0: this one). Only finished files' vectors
        wait for the files before them, so memory does not grow with file length."""
        from crossmodal.data.ingest import DONE, ingest
        from crossmodal.data.windows import WindowBatch

        parts: dict[int, list[tuple[np.ndarray, torch.Tensor]]] = {}
        flags: dict[int, tuple[bool, float]] = {}
        counts: dict[int, int] = {}
        refused: set[int] = set()  # over the window cap: the rest of their stream is ignored
        ready: dict[int, EmbeddedFile | Exception] = {}
        next_out = 0
        for index, event in ingest(self.jobs(paths, modality, min_seconds), self.workers):
            if index in refused:
                continue
            if isinstance(event, WindowBatch):
                counts[index] = counts.get(index, 0) + len(event.starts)
                if counts[index] > MAX_WINDOWS_PER_FILE:
                    refused.add(index)
                    parts.pop(index, None)
                    flags.pop(index, None)
                    ready[index] = self._too_many_windows(paths[index], float(event.starts[-1]))
                else:
                    if len(event.starts):
                        vectors = self._encode(modality, event.inputs)
                        parts.setdefault(index, []).append((event.starts, vectors))
                    padded, _ = flags.get(index, (False, 0.0))
                    flags[index] = (padded or event.padded, event.end or 0.0)
            elif event == DONE:
                chunks = parts.pop(index, [])
                padded, end = flags.pop(index, (False, 0.0))
                ready[index] = EmbeddedFile(
                    end,
                    np.concatenate([c[0] for c in chunks]),
                    np.ascontiguousarray(torch.cat([c[1] for c in chunks]).numpy()),
                    padded,
                )
            else:
                parts.pop(index, None)
                flags.pop(index, None)
                ready[index] = event  # type: ignore[assignment]
            while next_out in ready:
                yield next_out, ready.pop(next_out)
                next_out += 1

    def _too_many_windows(self, path: Path, reached: float) -> Exception:
        from crossmodal.data.errors import MediaError

        return MediaError(
            path,
            f"lasts more than {reached:.0f} s: more than {MAX_WINDOWS_PER_FILE} windows at a "
            f"{self.hop:g}-s hop; index it with --hop {min_hop_for(reached, self.window):.3g} "
            "or more",
        )

    def embed_file(
        self, path: Path, modality: str, min_seconds: float | None = None
    ) -> EmbeddedFile:
        """The windows of one file and their (W, D) float32 embeddings. Raises the
        :class:`MediaError` that stopped it."""
        ((_, result),) = self.embed_files([path], modality, min_seconds)
        if isinstance(result, Exception):
            raise result
        return result

    # -- a whole update -------------------------------------------------------------------
    def index(
        self,
        libraries: dict[str, Sequence[LibraryFile]],
        *,
        rebuild: bool = False,
        prune: bool = False,
        params: IndexParams | None = None,
    ) -> IndexReport:
        """Add/refresh the files of each modality's library; one atomic store version.

        A file that failed before and has not changed since (same content signature,
        same crossmodal version) is not decoded again: it is listed in ``known_bad``."""
        from crossmodal.data.errors import MediaError

        report = IndexReport()
        store = IndexStore(self.index_dir)
        dim = int(self.model.embed_dim)
        with store.begin_update(self.fingerprint, dim, rebuild=rebuild, params=params) as update:
            self._save_model()
            for modality, files in libraries.items():
                todo: list[tuple[LibraryFile, os.stat_result, str]] = []
                for entry in files:
                    path = entry.path
                    if not utf8_name(path):
                        report.failed.append((modality, str(path), NOT_UTF8_NAME))
                        continue
                    try:
                        st = path.stat()
                        signature = file_signature(path, st)
                    except OSError as err:
                        report.failed.append((modality, str(path), f"cannot read: {err.strerror}"))
                        continue
                    if not update.needs_embedding(
                        path, st.st_size, st.st_mtime, signature, modality=modality
                    ):
                        report.unchanged[modality] += 1
                        continue
                    known = update.known_failure(modality, path, signature)
                    if known is not None:
                        report.known_bad.append((modality, str(path), known))
                        continue
                    todo.append((entry, st, signature))
                bar = tqdm(
                    total=len(todo),
                    desc=f"indexing {modality}",
                    unit="file",
                    disable=not progress_bars(),
                )
                paths = [entry.path for entry, _, _ in todo]
                for position, result in self.embed_files(paths, modality):
                    bar.update()
                    entry, st, signature = todo[position]
                    if isinstance(result, Exception):
                        reason = _reason(result)
                        report.failed.append((modality, str(entry.path), reason))
                        update.record_failure(modality, entry.path, signature, reason)
                        continue
                    try:
                        tags = self._tags(modality, entry.path)
                    except MediaError as err:
                        report.failed.append((modality, str(entry.path), err.reason))
                        update.record_failure(modality, entry.path, signature, err.reason)
                        continue
                    self._add(update, modality, entry, st, signature, result, tags)
                    report.added[modality] += 1
                bar.close()
                if prune:
                    removed = update.remove_missing([f.path for f in files], modality=modality)
                    report.removed[modality] = len(removed)
            info = update.commit()
        report.version = info.version
        report.published = update.published
        return report

    def _add(
        self,
        update: Any,
        modality: str,
        entry: LibraryFile,
        st: os.stat_result,
        signature: str,
        embedded: EmbeddedFile,
        tags: dict[str, object] | None = None,
    ) -> None:
        extra: dict[str, object] = {"clip_id": entry.clip_id} if entry.clip_id else {}
        if tags is not None:
            extra["tags"] = tags
        meta = ItemMeta(
            size=st.st_size,
            mtime=st.st_mtime,
            checksum=signature,
            duration=embedded.duration,
            label=entry.label,
            extra=extra or None,
        )
        windows = [
            (float(s), float(min(s + self.window, embedded.duration))) for s in embedded.starts
        ]
        update.add_item(modality, entry.path, meta, windows, embedded.vectors)

    def _tags(self, modality: str, path: Path) -> dict[str, object] | None:
        """The tagger's whole-track tags of a music file (None: no tagger, or video)."""
        if modality != "music" or self.tagger is None:
            return None
        return self.tagger.tag_file(path).to_json()

    def _save_model(self) -> None:
        target = model_path_in_store(self.index_dir, self.fingerprint)
        if target.is_file():
            return
        with atomic_path(target) as tmp:
            self.model.save(tmp)


def describe_failures(failed: Iterable[tuple[str, str, str]]) -> str:
    return "\n".join(
        f"  [{modality}] {printable(path)}: {printable(reason)}"
        for modality, path, reason in failed
    )
