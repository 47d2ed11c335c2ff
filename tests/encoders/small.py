"""Small overrides that make every registered encoder cheap enough for a CPU test."""

from __future__ import annotations

from typing import Any

HF_TINY: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}
WAVEFORM_TINY: dict[str, Any] = {
    **HF_TINY,
    "seconds": 0.5,
    "conv_dim": (16, 16),
    "conv_stride": (5, 4),
    "conv_kernel": (10, 8),
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
}
FRAMES_SMALL: dict[str, Any] = {"num_frames": 2, "size": 32}
CLIP_SMALL: dict[str, Any] = {"num_frames": 4, "size": 32}

# Registry name → overrides for tests; absent names are cheap at their defaults.
SMALL: dict[str, dict[str, Any]] = {
    "resnet18": FRAMES_SMALL,
    "resnet34": FRAMES_SMALL,
    "resnet50": FRAMES_SMALL,
    "mobilenet_v3_small": FRAMES_SMALL,
    "mobilenet_v3_large": FRAMES_SMALL,
    "efficientnet_b0": FRAMES_SMALL,
    "efficientnet_lite0": FRAMES_SMALL,
    "r3d_18": CLIP_SMALL,
    "mc3_18": CLIP_SMALL,
    "r2plus1d_18": CLIP_SMALL,
    "s3d": {"num_frames": 8, "size": 32},
    "mvit_v2_s": CLIP_SMALL,
    "swin3d_t": CLIP_SMALL,
    "videomae": {**HF_TINY, "image_size": 32, "patch_size": 16, "num_frames": 4},
    "clip_frames": {**HF_TINY, "image_size": 32, "patch_size": 16, "num_frames": 2},
    "ast": {**HF_TINY, "seconds": 0.5, "n_mels": 32},
    "wav2vec2": WAVEFORM_TINY,
    "hubert": WAVEFORM_TINY,
    "logmel_cnn": {"channels": (8, 16), "seconds": 1.0},
    "descriptors": {"seconds": 1.0},
    "video_tiny": {},
    "audio_tiny": {},
    "musicnn_msd": {},
    "musicnn_mtt": {},
    "musicnn_vgg_msd": {},
    "musicnn_vgg_mtt": {},
}
# Encoders whose small build or forward still takes seconds on a 2-core CPU.
HEAVY = {
    "resnet34",
    "resnet50",
    "efficientnet_b0",
    "efficientnet_lite0",
    "mobilenet_v3_large",
    "r3d_18",
    "mc3_18",
    "r2plus1d_18",
    "s3d",
    "mvit_v2_s",
    "swin3d_t",
    "descriptors",
}
TRANSFORMERS = ("videomae", "clip_frames", "ast", "wav2vec2", "hubert")
