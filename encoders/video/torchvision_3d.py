"""torchvision's video classification networks as clip encoders."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn

from crossmodal.data.specs import VideoSpec
from crossmodal.encoders.base import VideoEncoder
from crossmodal.encoders.pretrained import load_torchvision_weights

# arch → (attribute holding the classifier, feature width, natural frames, natural size)
TORCHVISION_3D: dict[str, tuple[str, int, int, int]] = {
    "r3d_18": ("fc", 512, 16, 112),
    "mc3_18": ("fc", 512, 16, 112),
    "r2plus1d_18": ("fc", 512, 16, 112),
    "s3d": ("classifier", 1024, 16, 224),
    "mvit_v2_s": ("head", 768, 16, 224),
    "swin3d_t": ("head", 768, 16, 224),
}


class Video3DEncoder(VideoEncoder):
    """A torchvision video network without its classifier: (B, 3, T, H, W) → (B, F).

    F is the network's pooled feature (512 for the ResNet-3D family, 1024 for S3D, 768
    for MViT-v2-S and Swin3D-T). Frames are normalised with the Kinetics-400 statistics
    of the network's torchvision weights.
    """

    def __init__(self, network: nn.Module, feature_dim: int, video_spec: VideoSpec) -> None:
        super().__init__()
        self.network = network
        self.video_spec = video_spec
        self.output_dim = feature_dim

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        self.check_input(video)
        return self.network(video).flatten(1)


def torchvision_video_encoder(arch: str) -> Callable[..., Video3DEncoder]:
    """A registry builder for torchvision video network ``arch``."""
    head_attr, feature_dim, natural_frames, natural_size = TORCHVISION_3D[arch]

    def build(
        *,
        num_frames: int = natural_frames,
        size: int = natural_size,
        fps: float | None = None,
    ) -> Video3DEncoder:
        import torchvision
        from torchvision.models import get_model_weights

        if arch == "mvit_v2_s":
            network = mvit_v2_s_for(num_frames, size)
        else:
            network = getattr(torchvision.models.video, arch)(weights=None)
        setattr(network, head_attr, nn.Identity())
        if arch == "s3d":
            # S3D's fixed (2, 7, 7) average pool needs 224² input; pool whatever is left.
            network.avgpool = nn.AdaptiveAvgPool3d(1)
        preset = get_model_weights(arch).DEFAULT.transforms()
        spec = VideoSpec(
            num_frames=num_frames,
            height=size,
            width=size,
            fps=fps,
            mean=tuple(preset.mean),
            std=tuple(preset.std),
        )
        return Video3DEncoder(network, feature_dim, spec)

    build.__doc__ = (
        f"torchvision {arch} (default {natural_frames} frames at {natural_size}²); "
        f"pretrained= a torchvision state dict file or a weights name such as 'DEFAULT'."
    )
    return build


def torchvision_video_weights(arch: str) -> Callable[[Video3DEncoder, str], None]:
    """The registry's weights loader for :func:`torchvision_video_encoder` ``(arch)``:
    a torchvision state dict file or weights name into the network."""
    head_attr = TORCHVISION_3D[arch][0]

    def load(encoder: Video3DEncoder, pretrained: str | os.PathLike[str]) -> None:
        load_torchvision_weights(encoder.network, arch, head_attr, pretrained)

    return load


def mvit_v2_s_for(num_frames: int, size: int) -> nn.Module:
    """torchvision's MViT-v2-S built for ``num_frames`` × ``size``² input.

    ``torchvision.models.video.mvit_v2_s`` fixes 16 × 224²; the relative position
    tables depend on the input size, so other sizes need the network built directly
    from MViT-v2-S's block table (Li et al. 2022, as torchvision defines it).
    """
    from torchvision.models.video.mvit import MSBlockConfig, MViT

    heads = (1, 2, 2, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 8, 8)
    in_channels = (96, 96, 192, 192, *[384] * 11, 768)
    out_channels = (96, 192, 192, 384, *[384] * 10, 768, 768)
    pooled_q = {1, 3, 14}  # blocks that halve the spatial size
    stride_kv = ((1, 8, 8), (1, 4, 4), (1, 4, 4), *[(1, 2, 2)] * 11, (1, 1, 1), (1, 1, 1))
    blocks = [
        MSBlockConfig(
            num_heads=heads[i],
            input_channels=in_channels[i],
            output_channels=out_channels[i],
            kernel_q=[3, 3, 3],
            kernel_kv=[3, 3, 3],
            stride_q=[1, 2, 2] if i in pooled_q else [1, 1, 1],
            stride_kv=list(stride_kv[i]),
        )
        for i in range(len(heads))
    ]
    return MViT(
        spatial_size=(size, size),
        temporal_size=num_frames,
        block_setting=blocks,
        residual_pool=True,
        residual_with_cls_embed=False,
        rel_pos_embed=True,
        proj_after_attn=True,
        stochastic_depth_prob=0.2,
    )
