"""``video_tiny``: a CPU-sized video tower that keeps time until late."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from crossmodal.data.specs import VideoSpec
from crossmodal.encoders.base import VideoEncoder
from crossmodal.encoders.temporal import (
    TemporalConvNet,
    build_temporal_pool,
    pooled_clip_dim,
    pooled_clip_view,
)


class VideoTiny(VideoEncoder):
    """Small frames → per-frame conv stem → temporal convs over all T frames → pooling.

    Input (default spec): 48 frames at 12 fps (a 4 s window) of 48×48 px, ImageNet
    normalisation. Per frame, the RGB image and its difference to the previous frame
    (the motion channel; zero for the first frame) go through a 4×4/stride-4 conv and
    ``len(channels) - 1`` 3×3/stride-2 convs (BN, ReLU), then a spatial mean and max.
    The resulting (B, T, 2·channels[-1]) sequence goes through
    :class:`~crossmodal.encoders.temporal.TemporalConvNet` (``temporal_layers`` dilated
    layers, ``temporal_channels`` wide, ``out_channels`` out) and ``pool``: ``bins``
    (default: ``num_bins`` time bins concatenated, so beat phase and loudness contour
    survive), ``mean``, ``attention`` or ``transformer``.
    Output width: ``out_channels × num_bins`` for ``bins``, else ``out_channels``.
    """

    def __init__(
        self,
        *,
        num_frames: int = 48,
        size: int = 48,
        fps: float | None = 12.0,
        channels: tuple[int, ...] | list[int] = (24, 48),
        motion: bool = True,
        temporal_channels: int = 64,
        temporal_layers: int = 3,
        out_channels: int = 32,
        pool: str = "bins",
        num_bins: int = 24,
    ) -> None:
        super().__init__()
        if size % 4:
            raise ValueError(f"size must be a multiple of 4, got {size}")
        if num_frames < 2:
            raise ValueError(f"num_frames must be ≥ 2, got {num_frames}")
        self.video_spec = VideoSpec(num_frames=num_frames, height=size, width=size, fps=fps)
        self.motion = motion
        in_ch = 6 if motion else 3
        layers: list[nn.Module] = [_conv_bn_relu(in_ch, channels[0], 4, 4, 0)]
        for prev, nxt in itertools.pairwise(channels):
            layers.append(_conv_bn_relu(prev, nxt, 3, 2, 1))
        self.stem = nn.Sequential(*layers)
        self.temporal = TemporalConvNet(
            2 * channels[-1], temporal_channels, temporal_layers, out_dim=out_channels
        )
        self.pool = build_temporal_pool(pool, out_channels, num_frames, num_bins=num_bins)
        self.output_dim = self.pool.output_dim

    def frame_features(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → per-frame features (B, T, 2·channels[-1])."""
        b, c, t, h, w = video.shape
        # One (B·T, C', H, W) batch in channels-last memory, written once: the layout
        # roughly halves the small convs' CPU time, and building it in place avoids the
        # copies a transpose + cat + conversion would make (half the tower's time).
        src = video.permute(0, 2, 3, 4, 1)
        channels = 2 * c if self.motion else c
        frames = video.new_empty(b, t, h, w, channels)
        frames[..., :c] = src
        if self.motion:
            frames[:, :1, ..., c:] = 0
            frames[:, 1:, ..., c:] = src[:, 1:] - src[:, :-1]
        maps = self.stem(frames.view(b * t, h, w, channels).permute(0, 3, 1, 2))
        pooled = torch.cat([maps.mean(dim=(2, 3)), maps.amax(dim=(2, 3))], dim=1)
        return pooled.view(b, t, -1)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        self.check_input(video)
        steps = self.temporal(self.frame_features(video).transpose(1, 2))
        return self.pool(steps.transpose(1, 2))

    @property
    def clip_dim(self) -> int:
        return pooled_clip_dim(self.pool)

    def clip_view(self, features: torch.Tensor) -> torch.Tensor:
        """The time bins' mean (``out_channels``): see :meth:`Encoder.clip_view`."""
        return pooled_clip_view(self.pool, features)


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int, stride: int, padding: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )
