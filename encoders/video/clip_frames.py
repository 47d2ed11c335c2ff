"""CLIP's vision transformer (transformers) per frame, then temporal pooling."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from crossmodal.data.specs import VideoSpec
from crossmodal.encoders.hf import TransformersBackbone, build_hf_backbone
from crossmodal.encoders.video.frame_cnn import FrameEncoder

# The normalisation CLIP was trained with.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class CLIPVisionFeatures(nn.Module):
    """``CLIPVisionModel``: (N, 3, H, W) → the pooled (post-LayerNorm CLS) output (N, hidden)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=images).pooler_output


class CLIPFrameEncoder(TransformersBackbone, FrameEncoder):
    """:class:`FrameEncoder` over :class:`CLIPVisionFeatures`; ``hf_model`` is the
    ``CLIPVisionModel``."""

    @property
    def hf_model(self) -> nn.Module:  # type: ignore[override]
        return self.backbone.model


def build_clip_frames(
    *,
    pretrained: str | os.PathLike[str] | None = None,
    num_frames: int = 8,
    fps: float | None = None,
    temporal: str = "mean",
    num_bins: int = 4,
    **config: Any,
) -> CLIPFrameEncoder:
    """CLIP vision per frame + temporal pooling (``mean``/``attention``/``transformer``/
    ``bins``); defaults to the ViT-B/32 configuration at 224², random weights.
    ``**config``: ``CLIPVisionConfig`` fields (``hidden_size``, ``num_hidden_layers``,
    ``image_size``, ``patch_size``...). ``pretrained``: a ``save_pretrained`` folder of a
    ``CLIPVisionModel`` or a hub id such as ``"openai/clip-vit-base-patch32"``."""
    model, arch = build_hf_backbone("CLIPVisionModel", "CLIPVisionConfig", {}, pretrained, config)
    cfg = model.config
    spec = VideoSpec(
        num_frames=num_frames,
        height=cfg.image_size,
        width=cfg.image_size,
        fps=fps,
        mean=CLIP_MEAN,
        std=CLIP_STD,
    )
    encoder = CLIPFrameEncoder(CLIPVisionFeatures(model), cfg.hidden_size, spec, temporal, num_bins)
    options = {"num_frames": num_frames, "fps": fps, "temporal": temporal, "num_bins": num_bins}
    defaults = {"num_frames": 8, "fps": None, "temporal": "mean", "num_bins": 4}
    encoder.init_kwargs = {**arch, **{k: v for k, v in options.items() if v != defaults[k]}}
    return encoder
