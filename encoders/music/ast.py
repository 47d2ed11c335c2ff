"""Audio Spectrogram Transformer (transformers) on log-mel input."""

from __future__ import annotations

import os
from typing import Any, Literal

import torch
from torch import nn

from crossmodal.data.logmel import LogMel
from crossmodal.data.specs import AudioSpec
from crossmodal.encoders.base import MusicEncoder
from crossmodal.encoders.hf import TransformersBackbone, build_hf_backbone

# AST's input normalisation: (fbank - mean) / (2 · std), with AudioSet statistics.
AST_MEAN = -4.2677393
AST_STD = 4.5689974


class ASTEncoder(TransformersBackbone, MusicEncoder):
    """transformers ``ASTModel``: log-mel (B, n_mels, frames) → its pooled output (the
    mean of the CLS and distillation tokens), (B, hidden_size).

    The log-mel is transposed to AST's (B, frames, n_mels) and normalised as
    ``(x - norm_mean) / (2 · norm_std)``. With a waveform spec it applies
    :class:`~crossmodal.data.logmel.LogMel` itself.
    """

    def __init__(
        self, model: nn.Module, audio_spec: AudioSpec, norm_mean: float, norm_std: float
    ) -> None:
        super().__init__()
        self.hf_model = model
        self.audio_spec = audio_spec
        self.frontend = LogMel(audio_spec) if audio_spec.representation == "waveform" else None
        self.norm_mean = norm_mean
        self.norm_std = norm_std
        self.output_dim = model.config.hidden_size

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        self.check_input(audio)
        mel = self.frontend(audio) if self.frontend is not None else audio
        values = (mel.transpose(1, 2) - self.norm_mean) / (2 * self.norm_std)
        return self.hf_model(input_values=values).pooler_output


def build_ast(
    *,
    pretrained: str | os.PathLike[str] | None = None,
    seconds: float | None = None,
    n_mels: int | None = None,
    sample_rate: int = 16000,
    n_fft: int = 1024,
    hop_length: int = 160,
    representation: Literal["logmel", "waveform"] = "logmel",
    norm_mean: float = AST_MEAN,
    norm_std: float = AST_STD,
    **config: Any,
) -> ASTEncoder:
    """AST with the ViT-B configuration (patch 16, strides 10, hidden 768, 12 layers)
    over a 4 s, 128-mel log-mel at 16 kHz, n_fft 1024 (fewer leaves some of 128 mel
    filters empty) and a 10 ms hop (401 frames), random weights. ``seconds``/``n_mels`` set AST's ``max_length``/
    ``num_mel_bins``; ``**config``: other ``ASTConfig`` fields. ``pretrained``: a
    ``save_pretrained`` folder or a hub id (e.g.
    ``"MIT/ast-finetuned-audioset-10-10-0.4593"``), whose config fixes the input length."""

    def frames(sec: float) -> int:
        return round(sec * sample_rate) // hop_length + 1

    if seconds is not None:
        config["max_length"] = frames(seconds)
    if n_mels is not None:
        config["num_mel_bins"] = n_mels
    defaults = {"max_length": frames(4.0), "num_mel_bins": 128}
    model, arch = build_hf_backbone("ASTModel", "ASTConfig", defaults, pretrained, config)
    cfg = model.config
    spec = AudioSpec(
        sample_rate=sample_rate,
        seconds=(cfg.max_length - 1) * hop_length / sample_rate,
        representation=representation,
        n_mels=cfg.num_mel_bins,
        n_fft=n_fft,
        hop_length=hop_length,
    )
    encoder = ASTEncoder(model, spec, norm_mean, norm_std)
    options = {
        "sample_rate": sample_rate,
        "n_fft": n_fft,
        "hop_length": hop_length,
        "representation": representation,
        "norm_mean": norm_mean,
        "norm_std": norm_std,
    }
    given = {k: v for k, v in options.items() if v != build_ast.__kwdefaults__[k]}
    encoder.init_kwargs = {**arch, **given}
    return encoder
