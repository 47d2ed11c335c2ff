"""Video and music encoders (installed as ``crossmodal.encoders``).

``create_encoder(name, pretrained=None, **overrides)`` builds one by name,
``list_encoders(modality=None)`` lists them. Every encoder is an :class:`Encoder` with
``modality``, ``output_dim`` and its input spec (``video_spec`` or ``audio_spec``).
"""

from __future__ import annotations

from crossmodal.encoders.base import (
    AudioEncoder,
    Encoder,
    EncoderInputError,
    VideoEncoder,
    normalize_frames,
)
from crossmodal.encoders.heads import LinearHead, MLPHead, build_head
from crossmodal.encoders.pretrained import PretrainedError, PretrainedUnavailableError
from crossmodal.encoders.registry import (
    UnknownEncoderError,
    create_encoder,
    encoder_options,
    get_entry,
    list_encoders,
    register_encoder,
)

__all__ = [
    "AudioEncoder",
    "Encoder",
    "EncoderInputError",
    "LinearHead",
    "MLPHead",
    "PretrainedError",
    "PretrainedUnavailableError",
    "UnknownEncoderError",
    "VideoEncoder",
    "build_head",
    "create_encoder",
    "encoder_options",
    "get_entry",
    "list_encoders",
    "normalize_frames",
    "register_encoder",
]
