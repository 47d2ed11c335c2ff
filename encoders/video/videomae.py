"""VideoMAE (transformers) as a clip encoder."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from crossmodal.data.specs import IMAGENET_MEAN, IMAGENET_STD, VideoSpec
from crossmodal.encoders.base import VideoEncoder
from crossmodal.encoders.hf import TransformersBackbone, build_hf_backbone


class VideoMAEEncoder(TransformersBackbone, VideoEncoder):
    """transformers ``VideoMAEModel``: (B, 3, T, H, W) → mean of the last hidden states
    over all tubelet tokens (B, hidden_size). No masking at encode time."""

    def __init__(self, model: nn.Module, video_spec: VideoSpec) -> None:
        super().__init__()
        self.hf_model = model
        self.video_spec = video_spec
        self.output_dim = model.config.hidden_size

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        self.check_input(video)
        # VideoMAE takes (B, T, C, H, W)
        out = self.hf_model(pixel_values=video.transpose(1, 2))
        return out.last_hidden_state.mean(dim=1)


def build_videomae(
    *, pretrained: str | os.PathLike[str] | None = None, fps: float | None = None, **config: Any
) -> VideoMAEEncoder:
    """VideoMAE; defaults to the ViT-B configuration (16 frames at 224², tubelets 2×16×16,
    hidden 768, 12 layers), random weights. ``**config``: ``VideoMAEConfig`` fields
    (``hidden_size=64, num_hidden_layers=1, image_size=32, num_frames=4``...); the spec
    follows ``num_frames`` and ``image_size``. ``pretrained``: a ``save_pretrained``
    folder or a hub id such as ``"MCG-NJU/videomae-base"``."""
    model, arch = build_hf_backbone("VideoMAEModel", "VideoMAEConfig", {}, pretrained, config)
    cfg = model.config
    spec = VideoSpec(
        num_frames=cfg.num_frames,
        height=cfg.image_size,
        width=cfg.image_size,
        fps=fps,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )
    encoder = VideoMAEEncoder(model, spec)
    encoder.init_kwargs = {**arch, **({"fps": fps} if fps is not None else {})}
    return encoder
