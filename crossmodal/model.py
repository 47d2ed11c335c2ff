"""The two-tower model: video and music encoders projected into one shared space.

``CrossModalModel`` = a video tower and a music tower, each
``backbone (registered encoder) → projection head → L2-normalise``, and a learnable
logit scale for InfoNCE-style losses. It is built from a :class:`ModelConfig` of
primitives, and saved as that config plus a state dict.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from crossmodal.data.specs import AudioSpec, VideoSpec
from crossmodal.encoders import AudioEncoder, VideoEncoder, build_head, create_encoder
from crossmodal.errors import CrossmodalError, torch_load_reason

CHECKPOINT_FORMAT = "crossmodal.model/1"
# ModelConfig fields that change training, not what the model computes: left out of the
# fingerprint so that freezing a backbone does not invalidate an index.
_RUNTIME_FIELDS = (
    "freeze_video_backbone",
    "freeze_audio_backbone",
    "video_pretrained",
    "audio_pretrained",
)


class CheckpointError(CrossmodalError):
    """A model file that cannot be read or does not fit the model it describes."""


@dataclass
class ModelConfig:
    """Architecture of a :class:`CrossModalModel` (primitives only; YAML-friendly).

    ``video_encoder``/``audio_encoder``: registry names; ``*_overrides``: keyword
    overrides for :func:`crossmodal.encoders.create_encoder`; ``*_pretrained``: its
    ``pretrained=`` (used by :meth:`CrossModalModel.from_config` only; a saved model
    carries its weights). ``embed_dim``: width D of the shared space. ``head``:
    ``"mlp"`` (Linear → LayerNorm → GELU → Dropout → Linear, hidden ``head_hidden_dim``,
    default max(F, D)) or ``"linear"``. ``logit_scale_init``: initial value of the
    learnable logit scale s (1/τ, τ = 0.07); s is clamped to ``logit_scale_max``.
    ``freeze_*_backbone``: freeze that backbone after building.
    """

    video_encoder: str = "video_tiny"
    audio_encoder: str = "audio_tiny"
    video_overrides: dict[str, Any] = field(default_factory=dict)
    audio_overrides: dict[str, Any] = field(default_factory=dict)
    video_pretrained: str | None = None
    audio_pretrained: str | None = None
    embed_dim: int = 128
    head: Literal["mlp", "linear"] = "linear"
    head_hidden_dim: int | None = None
    head_dropout: float = 0.0
    logit_scale_init: float = 1.0 / 0.07
    logit_scale_max: float = 100.0
    learn_logit_scale: bool = True
    freeze_video_backbone: bool = False
    freeze_audio_backbone: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Strict: unknown keys and values of the wrong type are errors."""
        from crossmodal.config import from_dict

        return from_dict(cls, data)


class CrossModalModel(nn.Module):
    """Video tower + music tower → L2-normalised embeddings in one D-dim space.

    ``encode_video(video)`` (B, C, T, H, W) → (B, D) and ``encode_audio(audio)`` → (B, D),
    unit L2 norm; each is ``head_*(backbone_*(x))``, split so a trainer can cache
    backbone features of a frozen backbone and train the heads only. ``forward(video,
    audio)`` returns ``(video_emb, audio_emb)``. ``logit_scale()`` is the learnable
    ``s = exp(log_s)`` clamped to ≤ ``logit_scale_max``, for ``s · V Aᵀ`` logits.
    """

    def __init__(
        self, video_encoder: VideoEncoder, audio_encoder: AudioEncoder, config: ModelConfig
    ) -> None:
        super().__init__()
        if video_encoder.modality != "video" or audio_encoder.modality != "audio":
            raise CrossmodalError(
                f"need a video and an audio encoder, got {video_encoder.modality} and "
                f"{audio_encoder.modality}"
            )
        if config.logit_scale_init <= 0 or config.logit_scale_init > config.logit_scale_max:
            raise CrossmodalError(
                f"logit_scale_init must be in (0, logit_scale_max={config.logit_scale_max}], "
                f"got {config.logit_scale_init}"
            )
        self.config = config
        self.video_encoder = video_encoder
        self.audio_encoder = audio_encoder
        head_args = (config.embed_dim, config.head_hidden_dim, config.head_dropout)
        self.video_head = build_head(config.head, video_encoder.output_dim, *head_args)
        self.audio_head = build_head(config.head, audio_encoder.output_dim, *head_args)
        self.log_logit_scale = nn.Parameter(
            torch.tensor(math.log(config.logit_scale_init)),
            requires_grad=config.learn_logit_scale,
        )
        self._frozen = {"video": False, "audio": False}
        self.freeze_backbones(
            video=config.freeze_video_backbone, audio=config.freeze_audio_backbone
        )

    # construction ----------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: ModelConfig, *, load_pretrained: bool = True) -> CrossModalModel:
        """Build both encoders from the registry (with their ``pretrained=`` weights unless
        ``load_pretrained`` is False) and fresh heads."""
        video = create_encoder(
            config.video_encoder,
            pretrained=config.video_pretrained if load_pretrained else None,
            **config.video_overrides,
        )
        audio = create_encoder(
            config.audio_encoder,
            pretrained=config.audio_pretrained if load_pretrained else None,
            **config.audio_overrides,
        )
        if not isinstance(video, VideoEncoder) or not isinstance(audio, AudioEncoder):
            raise CrossmodalError(
                f"video_encoder must name a video encoder and audio_encoder an audio one; "
                f"got {config.video_encoder!r} ({video.modality}) and "
                f"{config.audio_encoder!r} ({audio.modality})"
            )
        # Record the full architecture (a pretrained folder may have set it) so that a
        # saved model rebuilds without the pretrained files.
        config = dataclasses.replace(
            config,
            video_overrides=dict(video.init_kwargs),
            audio_overrides=dict(audio.init_kwargs),
        )
        return cls(video, audio, config)

    # specs -----------------------------------------------------------------------------
    @property
    def video_spec(self) -> VideoSpec:
        return self.video_encoder.video_spec

    @property
    def audio_spec(self) -> AudioSpec:
        return self.audio_encoder.audio_spec

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    # towers ----------------------------------------------------------------------------
    def backbone_video(self, video: torch.Tensor) -> torch.Tensor:
        """Video backbone features (B, F_v); no autograd graph when the backbone is frozen."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self._frozen["video"]):
            return self.video_encoder(video)

    def backbone_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """Music backbone features (B, F_a); no autograd graph when the backbone is frozen."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self._frozen["audio"]):
            return self.audio_encoder(audio)

    def head_video(self, features: torch.Tensor) -> torch.Tensor:
        """(B, F_v) backbone features → (B, D) unit-norm video embeddings."""
        return F.normalize(self.video_head(features), dim=-1)

    def head_audio(self, features: torch.Tensor) -> torch.Tensor:
        """(B, F_a) backbone features → (B, D) unit-norm music embeddings."""
        return F.normalize(self.audio_head(features), dim=-1)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) frames per ``video_spec`` → (B, D), unit L2 norm."""
        return self.head_video(self.backbone_video(video))

    def encode_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """Waveform or log-mel per ``audio_spec`` → (B, D), unit L2 norm."""
        return self.head_audio(self.backbone_audio(audio))

    def forward(
        self, video: torch.Tensor, audio: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(video_emb, audio_emb)``, each (B, D) with unit L2 norm."""
        return self.encode_video(video), self.encode_audio(audio)

    def logit_scale(self) -> torch.Tensor:
        """``exp(log_logit_scale)`` clamped to ≤ ``logit_scale_max`` (no gradient past it)."""
        return self.log_logit_scale.clamp(max=math.log(self.config.logit_scale_max)).exp()

    # freezing --------------------------------------------------------------------------
    def freeze_backbones(self, video: bool = True, audio: bool = True) -> None:
        """Stop training the chosen backbones: no gradients, BatchNorm/dropout in eval mode
        even when the model is in train mode. ``False`` leaves that backbone as it is;
        use :meth:`unfreeze_backbones` to train it again."""
        for modality, encoder, wanted in (
            ("video", self.video_encoder, video),
            ("audio", self.audio_encoder, audio),
        ):
            if wanted:
                encoder.requires_grad_(False)
                encoder.eval()
                self._frozen[modality] = True

    def unfreeze_backbones(self, video: bool = True, audio: bool = True) -> None:
        """Train the chosen backbones again (mode follows the model's)."""
        for modality, encoder, wanted in (
            ("video", self.video_encoder, video),
            ("audio", self.audio_encoder, audio),
        ):
            if wanted:
                encoder.requires_grad_(True)
                encoder.train(self.training)
                self._frozen[modality] = False

    def is_backbone_frozen(self, modality: Literal["video", "audio"]) -> bool:
        """Whether that backbone is frozen (its features can then be cached)."""
        if modality not in self._frozen:
            raise ValueError(f"modality must be 'video' or 'audio', got {modality!r}")
        return self._frozen[modality]

    def train(self, mode: bool = True) -> CrossModalModel:
        super().train(mode)
        for modality, encoder in (("video", self.video_encoder), ("audio", self.audio_encoder)):
            if self._frozen[modality]:
                encoder.eval()
        return self

    # persistence -----------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        """The config as a dict of primitives, with the frozen state as it is now."""
        config = dataclasses.replace(
            self.config,
            freeze_video_backbone=self._frozen["video"],
            freeze_audio_backbone=self._frozen["audio"],
        )
        return config.to_dict()

    def save(self, path: str | Path) -> None:
        """Write ``{format, config, state_dict}`` with ``torch.save``, atomically (a temp
        file in the same folder, then a rename)."""
        from crossmodal.fileio import atomic_path

        payload = {
            "format": CHECKPOINT_FORMAT,
            "config": self.config_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> CrossModalModel:
        """Rebuild a model saved by :meth:`save` (``torch.load(weights_only=True)``; the
        encoders' ``pretrained=`` files are not needed)."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"model file not found: {path}")
        try:
            payload = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as err:  # unpickling errors come in many types
            raise CheckpointError(
                f"cannot read {path} as a crossmodal model: {torch_load_reason(err)}"
            ) from err
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{path} is not a crossmodal model file (expected format {CHECKPOINT_FORMAT!r})"
            )
        config = ModelConfig.from_dict(payload["config"])
        model = cls.from_config(config, load_pretrained=False)
        try:
            model.load_state_dict(payload["state_dict"], strict=True)
        except RuntimeError as err:
            raise CheckpointError(f"weights in {path} do not fit its config: {err}") from err
        return model.to(map_location)

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the architecture config and every weight (names, dtypes,
        shapes, bytes). Equal fingerprints ⇒ equal embeddings; a retrieval index stores it
        to refuse queries from a different model."""
        arch = {k: v for k, v in self.config.to_dict().items() if k not in _RUNTIME_FIELDS}
        digest = hashlib.sha256(json.dumps(arch, sort_keys=True, default=str).encode())
        for name, tensor in sorted(self.state_dict().items()):
            t = tensor.detach().cpu().contiguous()
            digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()
