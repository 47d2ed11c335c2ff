"""Embedding whole datasets with a trained model (evaluation, export, validation)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from crossmodal.errors import CrossmodalError
from crossmodal.logging_utils import progress_disabled


@dataclass
class EmbeddedClips:
    """Per-clip embeddings of both modalities with their keys, in dataset clip order.

    video, music: (N, D) float32, L2-normalised; tracks, labels: (N,) long (-1: no
    label); ids: clip ids.
    """

    video: torch.Tensor
    music: torch.Tensor
    tracks: torch.Tensor
    labels: torch.Tensor
    ids: list[str]


@torch.no_grad()
def embed_dataset(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    batch_size: int = 64,
    num_workers: int = 0,
    device: torch.device | str | None = None,
    desc: str = "embedding",
) -> EmbeddedClips:
    """Embed every item of a :class:`~crossmodal.data.PairedClipDataset`.

    When the dataset yields several fixed windows per clip (``eval_windows=n``), the
    window embeddings of a clip are averaged and re-normalised (multi-segment
    aggregation: ``normalize(Σ_w e_w / n)``), so the result has one row per clip. The
    model is put in eval mode for the pass and back in its previous mode after.
    A progress bar shows on a terminal only.
    """
    from crossmodal.data.loader import make_loader

    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    loader = make_loader(dataset, batch_size=batch_size, num_workers=num_workers)
    videos, musics, tracks, labels, ids = [], [], [], [], []
    bars = not progress_disabled() and sys.stderr.isatty()
    try:
        for batch in tqdm(loader, desc=desc, unit="batch", disable=not bars, leave=False):
            videos.append(model.encode("video", batch["video"].to(device)).float().cpu())
            musics.append(model.encode("music", batch["audio"].to(device)).float().cpu())
            tracks.append(batch["track"])
            labels.append(batch["label"])
            ids.extend(batch["id"])
    finally:
        model.train(was_training)
    if not videos:
        raise CrossmodalError("the dataset is empty: nothing to embed")
    video, music = torch.cat(videos), torch.cat(musics)
    track, label = torch.cat(tracks).long(), torch.cat(labels).long()
    segments = int(getattr(dataset, "segments", 1))
    if segments > 1:
        n = video.shape[0] // segments
        video = F.normalize(video.view(n, segments, -1).mean(dim=1), dim=-1)
        music = F.normalize(music.view(n, segments, -1).mean(dim=1), dim=-1)
        track, label = track[::segments], label[::segments]
        ids = ids[::segments]
    return EmbeddedClips(video=video, music=music, tracks=track, labels=label, ids=ids)


def load_trained_model(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """A :class:`~crossmodal.model.CrossModalModel` from a run folder (its ``model.pt``,
    else ``best.pt``/``last.pt``), a ``model.pt`` file, or a training checkpoint."""
    from crossmodal.model import CrossModalModel

    path = Path(path)
    if path.is_dir():
        for name in ("model.pt", "best.pt", "last.pt"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise CrossmodalError(
                f"{path} holds no model.pt, best.pt or last.pt: is it a run folder?"
            )
    if not path.is_file():
        raise CrossmodalError(f"no model at {path}")
    return CrossModalModel.load(path, map_location=map_location)


def manifest_dataset(
    model: Any,
    manifest: str | os.PathLike[str],
    split: str = "all",
    segments: int = 1,
    cache: str | os.PathLike[str] | None = None,
    run_dir: str | os.PathLike[str] | None = None,
) -> Any:
    """The fixed-window :class:`~crossmodal.data.PairedClipDataset` of one split of a
    manifest (``"all"``: every clip) for ``model``'s specs: the centre window of each
    clip, or ``segments`` evenly spaced windows (averaged by :func:`embed_dataset`).
    Labels index the whole manifest's label set, so splits compare. Errors list every
    missing media file at once; an undecodable clip raises (no silent substitution in
    an evaluation). ``run_dir``: a training run whose carved val split (``carve.json``)
    applies to a manifest without one."""
    from crossmodal.data import PairedClipDataset, read_manifest
    from crossmodal.data.splits import check_media_exist, split_records

    if segments < 1:
        raise CrossmodalError(f"--segments must be >= 1, got {segments}")
    from crossmodal.data.carve import with_stored_carve

    records = read_manifest(manifest)
    records = with_stored_carve(records, Path(run_dir) if run_dir is not None else None)
    labels = sorted({r.label for r in records if r.label is not None})
    chosen = split_records(records, split, str(manifest))
    check_media_exist(chosen)
    return PairedClipDataset(
        chosen,
        model.video_spec,
        model.audio_spec,
        train=False,
        labels=labels,
        eval_windows=segments if segments > 1 else "centre",
        cache=cache,
        on_error="raise",
    )
