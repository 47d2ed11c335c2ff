"""Embedding a library on many processes or machines, then one publish.

``crossmodal index --shard I/N`` embeds every N-th file of each library (starting at
the I-th, in the library's order) and writes the windows, vectors and file facts to
``INDEX_DIR/shards/shard-I-of-N.npz`` (+ ``.json``), without touching the store: any
number of shards run at once, on machines that share INDEX_DIR (or whose shard files
are copied into it). ``crossmodal index --merge-shards N`` then adds every shard's files
in the libraries' order through one :meth:`IndexStore.begin_update` and publishes one
version — the same catalog, vector ids and search results as a single-process run.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from crossmodal.errors import CrossmodalError
from crossmodal.fileio import atomic_write, atomic_write_text
from crossmodal.retrieval.index_params import IndexParams
from crossmodal.retrieval.indexer import Indexer, IndexReport, LibraryFile
from crossmodal.retrieval.records import ItemMeta
from crossmodal.retrieval.store import IndexStore

log = logging.getLogger(__name__)

SHARDS_DIR = "shards"


def parse_shard(spec: str) -> tuple[int, int]:
    """``"I/N"`` → (I, N) with 0 ≤ I < N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise CrossmodalError(f"--shard must be I/N with 0 <= I < N (e.g. 0/4), got {spec!r}")
    return int(match[1]), int(match[2])


def shard_stem(index_dir: str | os.PathLike[str], shard: int, count: int) -> Path:
    return Path(index_dir) / SHARDS_DIR / f"shard-{shard}-of-{count}"


def embed_shard(
    indexer: Indexer, libraries: dict[str, Sequence[LibraryFile]], shard: int, count: int
) -> tuple[Path, IndexReport]:
    """Embed shard ``shard`` of ``count`` of each library into shard files; returns the stem."""
    from crossmodal.data.errors import MediaError

    # Refuse a folder that is not an index before spending time on embedding.
    IndexStore(indexer.index_dir)._prepare_root()
    report = IndexReport()
    arrays: dict[str, np.ndarray] = {}
    files: list[dict[str, Any]] = []
    for modality, entries in libraries.items():
        vectors, starts, ends, owner = [], [], [], []
        for position in range(shard, len(entries), count):
            entry = entries[position]
            try:
                duration, window_starts, rows = indexer.embed_file(entry.path, modality)
            except (MediaError, OSError) as err:
                reason = getattr(err, "reason", None) or str(err)
                report.failed.append((modality, str(entry.path), reason))
                continue
            meta = ItemMeta.from_file(
                entry.path,
                duration=duration,
                label=entry.label,
                extra={"clip_id": entry.clip_id} if entry.clip_id else None,
            )
            files.append(
                {
                    "modality": modality,
                    "position": position,
                    "path": str(entry.path),
                    **asdict(meta),
                }
            )
            vectors.append(rows)
            starts.append(window_starts)
            ends.append(np.minimum(window_starts + indexer.window, duration))
            owner.append(np.full(len(rows), len(files) - 1, np.int64))
            report.added[modality] += 1
        dim = int(indexer.model.embed_dim)
        arrays[f"{modality}_vectors"] = (
            np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32)
        )
        arrays[f"{modality}_starts"] = np.concatenate(starts) if starts else np.zeros(0)
        arrays[f"{modality}_ends"] = np.concatenate(ends) if ends else np.zeros(0)
        arrays[f"{modality}_file"] = np.concatenate(owner) if owner else np.zeros(0, np.int64)
    stem = shard_stem(indexer.index_dir, shard, count)
    stem.parent.mkdir(parents=True, exist_ok=True)
    indexer._save_model()
    atomic_write(stem.with_suffix(".npz"), lambda tmp: _save_npz(tmp, arrays))
    header = {
        "fingerprint": indexer.fingerprint,
        "dim": int(indexer.model.embed_dim),
        "shard": shard,
        "count": count,
        "modalities": list(libraries),
        "files": files,
        "failed": report.failed,
    }
    atomic_write_text(stem.with_suffix(".json"), json.dumps(header) + "\n")
    return stem, report


def _save_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def merge_shards(
    index_dir: str | os.PathLike[str],
    count: int,
    *,
    rebuild: bool = False,
    params: IndexParams | None = None,
) -> IndexReport:
    """Publish the ``count`` shard files of ``index_dir`` as one version (then delete them)."""
    stems = [shard_stem(index_dir, i, count) for i in range(count)]
    missing = [s.name for s in stems if not s.with_suffix(".json").is_file()]
    if missing:
        raise CrossmodalError(
            f"{index_dir}: shard(s) {', '.join(missing)} are not written yet; run "
            f"`crossmodal index --shard I/{count}` for each before merging"
        )
    headers = [json.loads(s.with_suffix(".json").read_text(encoding="utf-8")) for s in stems]
    fingerprints = {h["fingerprint"] for h in headers}
    if len(fingerprints) != 1:
        raise CrossmodalError(
            f"the shards of {index_dir} were embedded by different models {sorted(fingerprints)}; "
            "re-run them with one checkpoint"
        )
    report = IndexReport()
    # Every file with its shard arrays, in the libraries' order (as a single run adds them).
    entries = []
    for stem, header in zip(stems, headers, strict=True):
        with np.load(stem.with_suffix(".npz"), allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        report.failed.extend(tuple(f) for f in header["failed"])
        for number, record in enumerate(header["files"]):
            modality = record["modality"]
            rows = arrays[f"{modality}_file"] == number
            entries.append(
                (
                    header["modalities"].index(modality),
                    record["position"],
                    record,
                    arrays[f"{modality}_vectors"][rows],
                    list(
                        zip(
                            arrays[f"{modality}_starts"][rows].tolist(),
                            arrays[f"{modality}_ends"][rows].tolist(),
                            strict=True,
                        )
                    ),
                )
            )
    entries.sort(key=lambda e: (e[0], e[1]))
    store = IndexStore(index_dir)
    with store.begin_update(
        headers[0]["fingerprint"], headers[0]["dim"], rebuild=rebuild, params=params
    ) as update:
        for _, _, record, vectors, windows in entries:
            modality, path = record["modality"], record["path"]
            meta = ItemMeta(
                **{
                    k: record[k]
                    for k in ("size", "mtime", "checksum", "duration", "label", "extra")
                }
            )
            if not update.needs_embedding(
                path, meta.size, meta.mtime, meta.checksum, modality=modality
            ):
                report.unchanged[modality] += 1
                continue
            update.add_item(modality, path, meta, windows, vectors)
            report.added[modality] += 1
        report.version = update.commit().version
    for stem in stems:
        stem.with_suffix(".npz").unlink()
        stem.with_suffix(".json").unlink()
    return report
