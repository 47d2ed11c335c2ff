"""Video encoders; importing this package registers them.

Families: frame-level 2D CNNs + temporal pooling (torchvision ResNet/MobileNetV3/
EfficientNet, EfficientNet-Lite0 with offline ImageNet weights), torchvision video
networks (R3D, MC3, R(2+1)D, S3D, MViT-v2, Swin3D), transformers VideoMAE and CLIP
vision per frame, and ``video_tiny``.
"""

from __future__ import annotations

from crossmodal.encoders.registry import register_encoder
from crossmodal.encoders.video.clip_frames import build_clip_frames
from crossmodal.encoders.video.frame_cnn import (
    TORCHVISION_2D,
    FrameEncoder,
    efficientnet_lite0_encoder,
    efficientnet_lite0_weights,
    torchvision_frame_encoder,
    torchvision_frame_weights,
)
from crossmodal.encoders.video.tiny import VideoTiny
from crossmodal.encoders.video.torchvision_3d import (
    TORCHVISION_3D,
    Video3DEncoder,
    torchvision_video_encoder,
    torchvision_video_weights,
)
from crossmodal.encoders.video.videomae import VideoMAEEncoder, build_videomae

register_encoder(
    "video_tiny",
    VideoTiny,
    modality="video",
    description="per-frame conv stem + motion channel + temporal convs; trains on a CPU",
)
for _arch in TORCHVISION_2D:
    register_encoder(
        _arch,
        torchvision_frame_encoder(_arch),
        modality="video",
        description=f"torchvision {_arch} per frame + temporal pooling",
        load_pretrained=torchvision_frame_weights(_arch),
    )
register_encoder(
    "efficientnet_lite0",
    efficientnet_lite0_encoder,
    modality="video",
    description="EfficientNet-Lite0 per frame + temporal pooling; pretrained='imagenet' offline",
    load_pretrained=efficientnet_lite0_weights,
)
for _arch in TORCHVISION_3D:
    register_encoder(
        _arch,
        torchvision_video_encoder(_arch),
        modality="video",
        description=f"torchvision video network {_arch}",
        load_pretrained=torchvision_video_weights(_arch),
    )
register_encoder(
    "videomae",
    build_videomae,
    modality="video",
    description="transformers VideoMAE, mean of the token states",
    builds_from_pretrained=True,
)
register_encoder(
    "clip_frames",
    build_clip_frames,
    modality="video",
    description="transformers CLIP vision per frame + temporal pooling",
    builds_from_pretrained=True,
)

__all__ = ["FrameEncoder", "Video3DEncoder", "VideoMAEEncoder", "VideoTiny"]
