"""Frozen-backbone training: backbone features computed once, only the heads train."""

from __future__ import annotations

import logging

import torch
from torch import nn
from tqdm import tqdm

from crossmodal.logging_utils import progress_disabled

log = logging.getLogger(__name__)


class HeadPair(nn.Module):
    """``forward(video_features, audio_features)`` → both heads' embeddings, so that DDP
    (which needs a ``forward``) can wrap the trainable part alone."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, video_features: torch.Tensor, audio_features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.head_video(video_features), self.model.head_audio(audio_features)


class FrozenFeatures:
    """Backbone features of every training clip at ``windows`` fixed windows.

    ``video``: (N, W, Fv), ``audio``: (N, W, Fa) on the CPU. :meth:`sample` draws one
    window per clip, the same for both modalities so that they stay aligned in time.
    """

    def __init__(self, video: torch.Tensor, audio: torch.Tensor, seed: int = 0) -> None:
        self.video = video
        self.audio = audio
        self.generator = torch.Generator().manual_seed(seed)

    @classmethod
    @torch.no_grad()
    def compute(
        cls,
        model: nn.Module,
        train_set: torch.utils.data.Dataset,
        windows: int,
        device: torch.device,
        batch_size: int,
    ) -> FrozenFeatures:
        from crossmodal.data import PairedClipDataset
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
        model.eval()
        videos, audios = [], []
        loader = make_loader(fixed, batch_size=batch_size)
        for batch in tqdm(
            loader, desc="backbone features", unit="batch", disable=progress_disabled(), leave=False
        ):
            videos.append(model.backbone_video(batch["video"].to(device)).float().cpu())
            audios.append(model.backbone_audio(batch["audio"].to(device)).float().cpu())
        video = torch.cat(videos)
        audio = torch.cat(audios)
        n = len(train_set.records)
        log.info("cached backbone features: %d clips × %d windows", n, windows)
        return cls(video.view(n, windows, -1), audio.view(n, windows, -1))

    def sample(self, indices: list[int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(indices)
        window = torch.randint(self.video.shape[1], (len(indices),), generator=self.generator)
        return self.video[idx, window].to(device), self.audio[idx, window].to(device)
