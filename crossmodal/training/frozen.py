"""Frozen-backbone training: backbone features computed once per clip (and kept in the
feature cache), only the heads train (``model(video, music, from_features=True)``)."""

from __future__ import annotations

import logging
import sys
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from crossmodal.logging_utils import progress_disabled

log = logging.getLogger(__name__)


class FrozenFeatures:
    """Backbone features of every training clip at ``windows`` fixed windows.

    ``video``: (N, W, F_v) and ``audio``: (N, W, F_a) float32 on the CPU; ``tracks``,
    ``labels``: (N,) long keys of what was loaded (a clip that could not be decoded and
    was replaced, with ``on_error=skip``, carries its replacement's keys). Each epoch
    :meth:`sample` uses one window per clip, the same for both modalities (they stay
    aligned in time), chosen by ``(seed, epoch)``: the choice does not depend on the
    rank or on resuming.
    """

    def __init__(
        self,
        video: torch.Tensor,
        audio: torch.Tensor,
        tracks: torch.Tensor,
        labels: torch.Tensor,
        seed: int = 0,
    ) -> None:
        if not video.shape[:2] == audio.shape[:2] or video.shape[0] != len(tracks):
            raise ValueError("video, audio, tracks and labels must cover the same clips")
        self.video = video
        self.audio = audio
        self.tracks = tracks
        self.labels = labels
        self.seed = seed
        self._epoch: int | None = None
        self._windows = torch.zeros(0, dtype=torch.long)

    @property
    def num_windows(self) -> int:
        return self.video.shape[1]

    def windows(self, epoch: int) -> torch.Tensor:
        """(N,) the window of every clip in ``epoch``."""
        if self._epoch != epoch:
            rng = np.random.default_rng([self.seed, epoch, 1])
            self._windows = torch.from_numpy(rng.integers(self.num_windows, size=len(self.tracks)))
            self._epoch = epoch
        return self._windows

    def sample(
        self, indices: list[int], epoch: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(video features, audio features, tracks, labels) of clips ``indices``."""
        idx = torch.as_tensor(indices)
        window = self.windows(epoch)[idx]
        return (
            self.video[idx, window].to(device),
            self.audio[idx, window].to(device),
            self.tracks[idx].to(device),
            self.labels[idx].to(device),
        )

    @classmethod
    @torch.no_grad()
    def compute(
        cls,
        model: Any,
        train_set: Any,
        windows: int,
        device: torch.device,
        batch_size: int,
        seed: int = 0,
    ) -> FrozenFeatures:
        """Features of every clip of ``train_set`` (a
        :class:`~crossmodal.data.PairedClipDataset`) from ``model``'s backbones, read
        from its feature cache where present; computed ones are stored there, keyed by
        the clip's file, windows, specs and both backbones' weights."""
        from crossmodal.data import PairedClipDataset, module_fingerprint
        from crossmodal.data.loader import make_loader

        fixed = PairedClipDataset(
            train_set.records,
            train_set.video_spec,
            train_set.audio_spec,
            train=False,
            eval_windows=windows,
            labels=train_set.labels,
            cache=train_set.cache,
            on_error=train_set.on_error,
        )
        cache = train_set.cache
        n = len(fixed.records)
        found: dict[int, dict[str, np.ndarray]] = {}
        keys: list[str] = []
        if cache is not None:
            backbones = {
                # the cache's key names, kept so that existing caches stay valid
                "video_backbone": module_fingerprint(model.encoders["video"]),
                "audio_backbone": module_fingerprint(model.encoders["music"]),
            }
            for i, record in enumerate(fixed.records):
                key = cache.key(record.video, _feature_params(fixed, record, windows, backbones))
                keys.append(key)
                hit = cache.get(key)
                if hit is not None:
                    found[i] = hit
        missing = [i for i in range(n) if i not in found]
        clips: list[tuple[torch.Tensor, torch.Tensor]] = [None] * n  # type: ignore[list-item]
        tracks = torch.as_tensor(fixed.track_indices[::windows].copy())
        labels = torch.as_tensor(fixed.label_indices[::windows].copy())
        for i, hit in found.items():
            clips[i] = (torch.from_numpy(hit["video"]), torch.from_numpy(hit["audio"]))
        if missing:
            model.eval()
            items = [i * windows + w for i in missing for w in range(windows)]
            loader = make_loader(torch.utils.data.Subset(fixed, items), batch_size=batch_size)
            parts: dict[str, list] = {"video": [], "audio": [], "track": [], "label": [], "id": []}
            bar = tqdm(
                loader,
                desc="backbone features",
                unit="batch",
                disable=progress_disabled() or not sys.stderr.isatty(),
                leave=False,
            )
            for batch in bar:
                parts["video"].append(
                    model.backbone("video", batch["video"].to(device)).float().cpu()
                )
                parts["audio"].append(
                    model.backbone("music", batch["audio"].to(device)).float().cpu()
                )
                parts["track"].append(batch["track"])
                parts["label"].append(batch["label"])
                parts["id"].extend(batch["id"])
            new_video = torch.cat(parts["video"]).view(len(missing), windows, -1)
            new_audio = torch.cat(parts["audio"]).view(len(missing), windows, -1)
            tracks[missing] = torch.cat(parts["track"])[::windows]
            labels[missing] = torch.cat(parts["label"])[::windows]
            for j, i in enumerate(missing):
                clips[i] = (new_video[j], new_audio[j])
                # A replaced (undecodable) clip's features are not its own: not cached.
                ids = parts["id"][j * windows : (j + 1) * windows]
                if cache is not None and all(x == fixed.records[i].id for x in ids):
                    cache.put(
                        keys[i], {"video": new_video[j].numpy(), "audio": new_audio[j].numpy()}
                    )
        log.info(
            "backbone features: %d clips × %d windows (%d from the cache, %d computed)",
            n,
            windows,
            len(found),
            len(missing),
        )
        video = torch.stack([v for v, _ in clips]).float()
        audio = torch.stack([a for _, a in clips]).float()
        return cls(video, audio, tracks.long(), labels.long(), seed=seed)


def _feature_params(
    dataset: Any, record: Any, windows: int, backbones: dict[str, str]
) -> dict[str, Any]:
    cache = dataset.cache
    return {
        "kind": "frozen-features",
        "windows": windows,
        "video_spec": dataset.video_spec.to_dict(),
        "audio_spec": dataset.audio_spec.to_dict(),
        "start": record.start,
        "end": record.end,
        "audio_backend": dataset.audio_backend,
        # The key is the video file's; a separate music file must be part of it too.
        "music_file": None if record.audio is None else cache.fingerprint(record.audio),
        **backbones,
    }
