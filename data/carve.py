"""A validation split carved from the training clips when a manifest has none.

The carve is seeded and grouped by ``track_id`` (every clip of a track lands on one
side, so no music is both trained on and validated on), about ``val_fraction`` of the
pool capped at ``val_carve_max`` clips. It is stored in the run folder
(``RUN_DIR/carve.json``: the ids of the carved clips) so that ``--resume`` and
``crossmodal evaluate --checkpoint RUN_DIR`` see the same split even if the manifest
grows later.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crossmodal.errors import CrossmodalError
from crossmodal.fileio import atomic_write_text

log = logging.getLogger(__name__)

CARVE_FILE = "carve.json"
# Below this many tracks in the pool a carve would leave too little on either side.
MIN_TRACKS = 5


def carve_ids(records: Sequence[Any], fraction: float, max_clips: int, seed: int) -> list[str]:
    """Ids of the clips to validate on: whole tracks, drawn in a seeded order, until
    about ``fraction`` of the clips (at least one track, at most ``max_clips`` clips
    unless a single track holds more) are taken. Empty when the pool has fewer than
    :data:`MIN_TRACKS` tracks. A function of the records' ids and tracks and the seed
    only, whatever their order."""
    by_track: dict[str, list[str]] = {}
    for record in records:
        by_track.setdefault(record.track_id, []).append(record.id)
    if len(by_track) < MIN_TRACKS:
        return []
    tracks = sorted(by_track)
    order = np.random.default_rng([seed, 0x5EED_CA]).permutation(len(tracks))
    target = min(max(round(fraction * len(records)), 1), max_clips)
    chosen: list[str] = []
    # Leave at least one track for training whatever the fraction.
    for index in order[: len(tracks) - 1]:
        ids = by_track[tracks[index]]
        if chosen and len(chosen) + len(ids) > max_clips:
            continue
        chosen.extend(sorted(ids))
        if len(chosen) >= target:
            break
    return sorted(chosen)


def apply_carve(
    records: Sequence[Any], val_ids: Sequence[str], train_split: str, val_split: str
) -> list[Any]:
    """``records`` with the carved ids in ``val_split``; the other clips of the pool (the
    ``train_split`` clips, or every clip when none has a split) in ``train_split``."""
    carved = set(val_ids)
    no_splits = all(r.split is None for r in records)
    out = []
    for record in records:
        if record.id in carved:
            record = dataclasses.replace(record, split=val_split)
        elif no_splits:
            record = dataclasses.replace(record, split=train_split)
        out.append(record)
    return out


def with_val_split(
    records: Sequence[Any],
    *,
    train_split: str,
    val_split: str,
    fraction: float,
    max_clips: int,
    seed: int,
    run_dir: Path | None,
    write: bool = True,
) -> list[Any]:
    """The records with a ``val_split``: as they are when the manifest has one; else the
    carve stored in ``run_dir`` (a resumed run), or a new carve (stored there when
    ``write``). Logs what it did; a pool too small to carve is returned as it is."""
    if any(r.split == val_split for r in records):
        return list(records)
    stored = load_carve(run_dir) if run_dir is not None else None
    if stored is not None:
        return apply_carve(records, stored, train_split, val_split)
    no_splits = all(r.split is None for r in records)
    pool = list(records) if no_splits else [r for r in records if r.split == train_split]
    val_ids = carve_ids(pool, fraction, max_clips, seed)
    if not val_ids:
        log.warning(
            "no %r split and only %d track(s) to carve one from: training without validation",
            val_split,
            len({r.track_id for r in pool}),
        )
        return list(records)
    carved = apply_carve(records, val_ids, train_split, val_split)
    tracks = len({r.track_id for r in carved if r.split == val_split})
    where = ""
    if run_dir is not None and write:
        path = save_carve(run_dir, val_ids, seed)
        where = f"; stored in {path}"
    log.info(
        "no %r split: carved %d clips (%d tracks) of the %d %s clips for validation%s",
        val_split,
        len(val_ids),
        tracks,
        len(pool),
        "unsplit" if no_splits else repr(train_split),
        where,
    )
    return carved


def with_stored_carve(
    records: Sequence[Any], run_dir: Path | None, train_split: str = "train", val_split: str = "val"
) -> list[Any]:
    """``records`` split as the run in ``run_dir`` carved them (as they are when the
    manifest has a ``val_split`` or the run stored no carve)."""
    if run_dir is None or any(r.split == val_split for r in records):
        return list(records)
    stored = load_carve(run_dir)
    if stored is None:
        return list(records)
    return apply_carve(records, stored, train_split, val_split)


def save_carve(run_dir: Path, val_ids: Sequence[str], seed: int) -> Path:
    """Write ``RUN_DIR/carve.json`` atomically."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CARVE_FILE
    body = {"seed": seed, "val": list(val_ids)}
    atomic_write_text(path, json.dumps(body, indent=1) + "\n")
    return path


def load_carve(run_dir: Path) -> list[str] | None:
    """The carved val ids stored in ``run_dir``, or None when there are none."""
    path = Path(run_dir) / CARVE_FILE
    if not path.is_file():
        return None
    try:
        ids = json.loads(path.read_text(encoding="utf-8"))["val"]
    except (ValueError, KeyError, TypeError) as err:
        raise CrossmodalError(
            f"{path} is not a carve file ({err}); delete it to carve again"
        ) from err
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise CrossmodalError(f"{path}: 'val' must be a list of clip ids; delete it to carve again")
    return ids
