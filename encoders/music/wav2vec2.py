"""wav2vec 2.0 and HuBERT (transformers) on the raw waveform."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from crossmodal.data.specs import AudioSpec
from crossmodal.encoders.base import MusicEncoder
from crossmodal.encoders.hf import TransformersBackbone, build_hf_backbone

# Our defaults on top of transformers' base configuration: no SpecAugment-style time
# masking inside the encoder (it would silently drop content at training time).
WAVEFORM_DEFAULTS: dict[str, Any] = {"apply_spec_augment": False}


class WaveformTransformerEncoder(TransformersBackbone, MusicEncoder):
    """A transformers waveform model (``Wav2Vec2Model``, ``HubertModel``): waveform
    (B, S) → mean of the last hidden states over time, (B, hidden_size).

    ``normalize``: each clip is scaled to zero mean, unit variance first, as the
    transformers feature extractor does with ``do_normalize=True``.
    """

    def __init__(self, model: nn.Module, audio_spec: AudioSpec, normalize: bool) -> None:
        super().__init__()
        self.hf_model = model
        self.audio_spec = audio_spec
        self.normalize = normalize
        self.output_dim = model.config.hidden_size

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        self.check_input(audio)
        if self.normalize:
            mean = audio.mean(dim=1, keepdim=True)
            std = audio.std(dim=1, keepdim=True)
            audio = (audio - mean) / (std + 1e-7)
        return self.hf_model(input_values=audio).last_hidden_state.mean(dim=1)


def waveform_transformer_builder(
    model_class: str, config_class: str
) -> Callable[..., WaveformTransformerEncoder]:
    """A registry builder for ``model_class`` (``"Wav2Vec2Model"``/``"HubertModel"``)."""

    def build(
        *,
        pretrained: str | os.PathLike[str] | None = None,
        sample_rate: int = 16000,
        seconds: float = 4.0,
        normalize: bool = True,
        **config: Any,
    ) -> WaveformTransformerEncoder:
        model, arch = build_hf_backbone(
            model_class, config_class, WAVEFORM_DEFAULTS, pretrained, config
        )
        spec = AudioSpec(sample_rate=sample_rate, seconds=seconds, representation="waveform")
        encoder = WaveformTransformerEncoder(model, spec, normalize)
        options = {"sample_rate": sample_rate, "seconds": seconds, "normalize": normalize}
        defaults = {"sample_rate": 16000, "seconds": 4.0, "normalize": True}
        encoder.init_kwargs = {**arch, **{k: v for k, v in options.items() if v != defaults[k]}}
        return encoder

    build.__doc__ = (
        f"transformers {model_class} on a 4 s, 16 kHz waveform; defaults to the base "
        f"configuration (7 conv layers, hidden 768, 12 layers), random weights, no time "
        f"masking. ``**config``: {config_class} fields. ``pretrained``: a save_pretrained "
        f"folder or a hub id."
    )
    return build
