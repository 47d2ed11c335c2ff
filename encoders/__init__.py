"""Video and music encoders (installed as ``crossmodal.encoders``).

``create_encoder(name, pretrained=None, **overrides)`` builds one by name,
``list_encoders(modality=None)`` lists them (``"video"`` or ``"music"``). Every encoder
is an :class:`Encoder` with ``modality``, ``output_dim`` and its input spec
(``video_spec`` or ``audio_spec``). An unknown name raises
:class:`~crossmodal.registry.UnknownNameError`, as in every registry.
"""

from __future__ import annotations

from crossmodal.encoders.base import (
    MODALITIES,
    Encoder,
    EncoderInputError,
    Modality,
    MusicEncoder,
    VideoEncoder,
    normalize_frames,
)
from crossmodal.encoders.heads import HEADS, LinearHead, MLPHead, build_head
from crossmodal.encoders.pretrained import PretrainedError, PretrainedUnavailableError
from crossmodal.encoders.registry import (
    ENCODERS,
    create_encoder,
    encoder_options,
    get_entry,
    list_encoders,
    register_encoder,
)

__all__ = [
    "ENCODERS",
    "HEADS",
    "MODALITIES",
    "Encoder",
    "EncoderInputError",
    "LinearHead",
    "MLPHead",
    "Modality",
    "MusicEncoder",
    "PretrainedError",
    "PretrainedUnavailableError",
    "VideoEncoder",
    "build_head",
    "create_encoder",
    "encoder_options",
    "get_entry",
    "list_encoders",
    "normalize_frames",
    "register_encoder",
]
