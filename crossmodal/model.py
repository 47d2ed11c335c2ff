"""The two-tower model: video and music encoders projected into one shared space.

``CrossModalModel`` keys its towers by modality (``"video"``, ``"music"``): for each,
``encoders[modality]`` (a registered encoder) → ``heads[modality]`` (projection head) →
L2-normalise, once. It is built from a :class:`ModelConfig` of primitives, and saved as
that config plus a state dict (:mod:`crossmodal.checkpoint`). The learnable temperature
of InfoNCE-style losses belongs to the loss, not to the model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F

from crossmodal.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from crossmodal.data.specs import AudioSpec, VideoSpec
from crossmodal.embedding_layout import GATE_QUANTILE, LEGACY_GATE_QUANTILE, EmbeddingLayout
from crossmodal.encoders import MODALITIES, Encoder, Modality, build_head, create_encoder
from crossmodal.errors import CrossmodalError

__all__ = ["MODALITIES", "CheckpointError", "CrossModalModel", "Modality", "ModelConfig"]

# ModelConfig fields that change training, not what the model computes: left out of the
# fingerprint so that freezing a backbone does not invalidate an index.
_RUNTIME_FIELDS = (
    "freeze_video_backbone",
    "freeze_music_backbone",
    "video_pretrained",
    "music_pretrained",
    "vibe_dropout",
)
# Fields that change how embeddings are scored, not the embeddings themselves.
_SCORING_FIELDS = ("sync_gate", "sync_gate_quantile")
# Architecture fields added after models were indexed, with the value that computes what
# files without them computed: left out at that value, so their fingerprints stand.
_ADDED_FIELDS = {"vibe_input": "features"}
# State-dict prefixes of files written before the towers were keyed by modality.
_LEGACY_PREFIXES = {
    "video_encoder.": "encoders.video.",
    "audio_encoder.": "encoders.music.",
    "video_head.": "heads.video.",
    "audio_head.": "heads.music.",
}
# The model's logit scale never trained (the loss's did; it was copied in at save time).
_LOGIT_SCALE_RETIRED = "the learnable temperature belongs to the InfoNCE loss now"


@dataclass
class ModelConfig:
    """Architecture of a :class:`CrossModalModel` (primitives only; YAML-friendly).

    ``video_encoder``/``music_encoder``: registry names; ``*_overrides``: keyword
    overrides for :func:`crossmodal.encoders.create_encoder`; ``*_pretrained``: its
    ``pretrained=`` (used by :meth:`CrossModalModel.from_config` only; a saved model
    carries its weights). ``embed_dim``: width D of the shared space. ``head``:
    ``"mlp"`` (Linear → LayerNorm → GELU → Dropout → Linear, hidden ``head_hidden_dim``,
    default max(F, D)) or ``"linear"``. ``freeze_*_backbone``: freeze that backbone after
    building. Configs and files that use the former ``audio_*`` names still load.

    ``vibe_dim`` > 0 adds a second head per tower on the same backbone features, the
    "vibe" part (trained on moods; ``embed_dim`` is then the "sync" part's width), and the
    model emits ``[√(1−blend)·sync, √blend·vibe]`` (see
    :mod:`crossmodal.embedding_layout`): ``blend`` is the default weight of the vibe score.
    ``vibe_input``: what the vibe heads read, ``"features"`` (the backbone's whole output)
    or ``"clip"`` (each tower's :meth:`~crossmodal.encoders.base.Encoder.clip_view`: time
    bins averaged out, clip summaries kept); ``vibe_dropout``: dropout on that input while
    training.
    ``moods``: the mood names the model predicts (set after training from the vibe term's
    class proxies, empty when it has none). ``sync_gate_quantile``: the quantile of the
    non-matching pairs the gate was calibrated at (set by training with the gate; None,
    as in files from before it was recorded: 0.99). ``sync_gate``: the sync gate τ of the score
    (set after training from the validation clips, None: the linear score; see
    :mod:`crossmodal.embedding_layout`). ``vibe_dim`` defaults to 0 here (files written
    before the vibe part load as they were); ``crossmodal train``'s default model has one
    (:class:`crossmodal.training.config.TrainConfig`).
    """

    RENAMED_KEYS: ClassVar[dict[str, str]] = {
        "audio_encoder": "music_encoder",
        "audio_overrides": "music_overrides",
        "audio_pretrained": "music_pretrained",
        "freeze_audio_backbone": "freeze_music_backbone",
    }
    RETIRED_KEYS: ClassVar[dict[str, tuple[Any, str]]] = {
        "logit_scale_init": (1.0 / 0.07, _LOGIT_SCALE_RETIRED),
        "logit_scale_max": (100.0, _LOGIT_SCALE_RETIRED),
        "learn_logit_scale": (True, _LOGIT_SCALE_RETIRED),
    }

    video_encoder: str = "video_tiny"
    music_encoder: str = "audio_tiny"
    video_overrides: dict[str, Any] = field(default_factory=dict)
    music_overrides: dict[str, Any] = field(default_factory=dict)
    video_pretrained: str | None = None
    music_pretrained: str | None = None
    embed_dim: int = 128
    head: Literal["mlp", "linear"] = "linear"
    head_hidden_dim: int | None = None
    head_dropout: float = 0.0
    freeze_video_backbone: bool = False
    freeze_music_backbone: bool = False
    vibe_dim: int = 0
    vibe_input: Literal["features", "clip"] = "features"
    vibe_dropout: float = 0.0
    blend: float = 0.5
    moods: list[str] = field(default_factory=list)
    sync_gate: float | None = None
    sync_gate_quantile: float | None = None

    def __post_init__(self) -> None:
        # Checked here so that a bad value fails with the field's name before any build.
        from crossmodal.config import ConfigError

        if self.vibe_dim < 0:
            raise ConfigError(f"model.vibe_dim must be >= 0, got {self.vibe_dim}")
        if self.vibe_input not in ("features", "clip"):
            raise ConfigError(f"model.vibe_input must be features or clip, got {self.vibe_input!r}")
        if not 0.0 <= self.vibe_dropout < 1.0:
            raise ConfigError(f"model.vibe_dropout must be in [0, 1), got {self.vibe_dropout}")
        if self.vibe_dim and not 0.0 < self.blend < 1.0:
            raise ConfigError(f"model.blend must be in (0, 1), got {self.blend}")
        if self.moods and not self.vibe_dim:
            raise ConfigError("model.moods needs a vibe part (model.vibe_dim > 0)")
        if self.sync_gate_quantile is not None and not 0.5 <= self.sync_gate_quantile < 1.0:
            raise ConfigError(
                f"model.sync_gate_quantile must be in [0.5, 1), got {self.sync_gate_quantile}"
            )
        if self.sync_gate is not None and not (self.vibe_dim and -1.0 <= self.sync_gate < 1.0):
            raise ConfigError(
                f"model.sync_gate needs a vibe part and a value in [-1, 1), got {self.sync_gate}"
            )

    @property
    def layout(self) -> EmbeddingLayout:
        """Where the sync and vibe parts lie in the emitted vector."""
        if not self.vibe_dim:
            return EmbeddingLayout(self.embed_dim)
        quantile = self.sync_gate_quantile
        return EmbeddingLayout(
            self.embed_dim,
            self.vibe_dim,
            self.blend,
            self.sync_gate,
            LEGACY_GATE_QUANTILE if quantile is None else quantile,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Strict: unknown keys and values of the wrong type are errors."""
        from crossmodal.config import from_dict

        return from_dict(cls, data)

    def tower(self, modality: Modality) -> tuple[str, str | None, dict[str, Any]]:
        """``(encoder name, pretrained, overrides)`` of ``modality``'s tower."""
        return (
            getattr(self, f"{modality}_encoder"),
            getattr(self, f"{modality}_pretrained"),
            getattr(self, f"{modality}_overrides"),
        )


class CrossModalModel(nn.Module):
    """Video tower + music tower → L2-normalised embeddings in one D-dim space.

    ``encode(modality, x)`` → (B, D), unit L2 norm: ``project(modality,
    backbone(modality, x))``, split so a trainer can cache backbone features of a frozen
    backbone and train the heads only. ``forward(video, music)`` returns ``(video_emb,
    music_emb)``; with ``from_features=True`` it takes backbone features instead.
    Inputs: video (B, C, T, H, W) frames per ``video_spec``; music a waveform or log-mel
    per ``audio_spec``.

    ``legacy_fingerprint``: for a model read from a file written before checkpoint
    format 2, the fingerprint that file was known by (indexes built then store it);
    else None.
    """

    legacy_fingerprint: str | None = None

    def __init__(self, encoders: Mapping[Modality, Encoder], config: ModelConfig) -> None:
        super().__init__()
        got = {m: getattr(encoders.get(m), "modality", None) for m in MODALITIES}
        if set(encoders) != set(MODALITIES) or any(got[m] != m for m in MODALITIES):
            raise CrossmodalError(
                f"need a video and a music encoder, got {', '.join(map(str, got.values()))}"
            )
        self.config = config
        self.encoders = nn.ModuleDict({m: encoders[m] for m in MODALITIES})
        self.heads = nn.ModuleDict(
            {
                m: build_head(
                    config.head,
                    encoders[m].output_dim,
                    config.embed_dim,
                    config.head_hidden_dim,
                    config.head_dropout,
                )
                for m in MODALITIES
            }
        )
        self.layout = config.layout
        if config.vibe_dim:
            self.vibe_heads = nn.ModuleDict(
                {
                    m: nn.Linear(
                        encoders[m].clip_dim
                        if config.vibe_input == "clip"
                        else encoders[m].output_dim,
                        config.vibe_dim,
                    )
                    for m in MODALITIES
                }
            )
            self.vibe_dropout = nn.Dropout(config.vibe_dropout)
            # Unit-norm mood centres in the vibe part (set by set_moods after training).
            self.register_buffer("mood_prototypes", torch.zeros(len(config.moods), config.vibe_dim))
        self._frozen = dict.fromkeys(MODALITIES, False)
        self.freeze_backbones(m for m in MODALITIES if getattr(config, f"freeze_{m}_backbone"))

    # construction ----------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: ModelConfig, *, load_pretrained: bool = True) -> CrossModalModel:
        """Build both encoders from the registry (with their ``pretrained=`` weights unless
        ``load_pretrained`` is False) and fresh heads."""
        encoders = {}
        for modality in MODALITIES:
            name, pretrained, overrides = config.tower(modality)
            encoder = create_encoder(
                name, pretrained=pretrained if load_pretrained else None, **overrides
            )
            if encoder.modality != modality:
                raise CrossmodalError(
                    f"{modality}_encoder must name a {modality} encoder; "
                    f"{name!r} is a {encoder.modality} encoder"
                )
            encoders[modality] = encoder
        # Record the full architecture (a pretrained folder may have set it) so that a
        # saved model rebuilds without the pretrained files.
        config = dataclasses.replace(
            config,
            video_overrides=dict(encoders["video"].init_kwargs),
            music_overrides=dict(encoders["music"].init_kwargs),
        )
        return cls(encoders, config)

    # specs -----------------------------------------------------------------------------
    @property
    def video_spec(self) -> VideoSpec:
        """How to decode video for the video tower."""
        return self.encoders["video"].video_spec

    @property
    def audio_spec(self) -> AudioSpec:
        """How to decode audio (music files, video soundtracks) for the music tower."""
        return self.encoders["music"].audio_spec

    @property
    def embed_dim(self) -> int:
        """Width of the emitted vector (sync part plus vibe part)."""
        return self.layout.dim

    # towers ----------------------------------------------------------------------------
    def backbone(self, modality: Modality, x: torch.Tensor) -> torch.Tensor:
        """Backbone features (B, F) of ``modality``; no autograd graph when it is frozen."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self._frozen[modality]):
            return self.encoders[modality](x)

    def project(self, modality: Modality, features: torch.Tensor) -> torch.Tensor:
        """(B, F) backbone features → (B, D) unit-norm embeddings (the one normalisation;
        with a vibe part, each part is normalised and the two are weighted by the
        default blend, see :mod:`crossmodal.embedding_layout`)."""
        sync = F.normalize(self.heads[modality](features), dim=-1)
        if not self.layout.has_vibe:
            return sync
        if self.config.vibe_input == "clip":
            features = self.encoders[modality].clip_view(features)
        vibe = F.normalize(self.vibe_heads[modality](self.vibe_dropout(features)), dim=-1)
        return self.layout.combine(sync, vibe)

    def set_moods(self, names: list[str], prototypes: torch.Tensor) -> None:
        """Give the model mood names and their (len(names), vibe_dim) centres in the vibe
        part, so that :meth:`predict_mood` works (stored with the model)."""
        if not self.layout.has_vibe or prototypes.shape != (len(names), self.layout.vibe_dim):
            raise ValueError(
                f"need (moods, vibe_dim) = ({len(names)}, {self.layout.vibe_dim}) prototypes, "
                f"got {tuple(prototypes.shape)}"
            )
        self.config = dataclasses.replace(self.config, moods=list(names))
        centres = F.normalize(prototypes.detach().float(), dim=-1)
        if self.mood_prototypes.shape == centres.shape:
            self.mood_prototypes.copy_(centres)  # in place: wrappers (DDP) keep the buffer
        else:
            self.mood_prototypes = centres.to(self.mood_prototypes.device)

    def set_sync_gate(self, gate: float | None, quantile: float = GATE_QUANTILE) -> None:
        """Set the sync gate τ of the score (see :mod:`crossmodal.embedding_layout`;
        stored with the model; None: the linear score) and the ``quantile`` of the
        non-matching pairs it was calibrated at (:func:`calibrate_gate`'s)."""
        # Plain floats: a numpy scalar would not load with weights_only.
        self.config = dataclasses.replace(
            self.config,
            sync_gate=None if gate is None else float(gate),
            sync_gate_quantile=None if gate is None else float(quantile),
        )
        self.layout = self.config.layout

    def predict_mood(self, emb: torch.Tensor) -> list[str] | None:
        """The nearest mood of each (B, D) embedding, or None when the model has no moods."""
        if not self.config.moods:
            return None
        _, vibe = self.layout.split(emb)
        best = (vibe.float() @ self.mood_prototypes.T.to(vibe.device)).argmax(-1)
        return [self.config.moods[i] for i in best.tolist()]

    def encode(self, modality: Modality, x: torch.Tensor) -> torch.Tensor:
        """A batch of ``modality``'s input → (B, D) embeddings, unit L2 norm."""
        return self.project(modality, self.backbone(modality, x))

    def forward(
        self, video: torch.Tensor, music: torch.Tensor, *, from_features: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(video_emb, music_emb)``, each (B, D) with unit L2 norm. ``from_features``:
        the inputs are backbone features (cached ones of frozen backbones), so only the
        heads run: a DDP wrapper of the model then trains the heads alone."""
        step = self.project if from_features else self.encode
        return step("video", video), step("music", music)

    # freezing --------------------------------------------------------------------------
    def freeze_backbones(self, modalities: Iterable[Modality] = MODALITIES) -> None:
        """Stop training the backbones of ``modalities`` (default: both): no gradients,
        BatchNorm/dropout in eval mode even when the model is in train mode. Use
        :meth:`unfreeze_backbones` to train them again."""
        for modality in self._checked(modalities):
            self.encoders[modality].requires_grad_(False)
            self.encoders[modality].eval()
            self._frozen[modality] = True

    def unfreeze_backbones(self, modalities: Iterable[Modality] = MODALITIES) -> None:
        """Train the backbones of ``modalities`` again (mode follows the model's)."""
        for modality in self._checked(modalities):
            self.encoders[modality].requires_grad_(True)
            self.encoders[modality].train(self.training)
            self._frozen[modality] = False

    def is_backbone_frozen(self, modality: Modality) -> bool:
        """Whether that backbone is frozen (its features can then be cached)."""
        return self._frozen[self._checked([modality])[0]]

    @staticmethod
    def _checked(modalities: Iterable[str]) -> list[Modality]:
        chosen = list(modalities)
        wrong = [m for m in chosen if m not in MODALITIES]
        if wrong:
            raise ValueError(f"modality must be one of {', '.join(MODALITIES)}, got {wrong[0]!r}")
        return chosen  # type: ignore[return-value]

    def train(self, mode: bool = True) -> CrossModalModel:
        super().train(mode)
        for modality, frozen in self._frozen.items():
            if frozen:
                self.encoders[modality].eval()
        return self

    # persistence -----------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        """The config as a dict of primitives, with the frozen state as it is now."""
        config = dataclasses.replace(
            self.config,
            freeze_video_backbone=self._frozen["video"],
            freeze_music_backbone=self._frozen["music"],
        )
        return config.to_dict()

    def checkpoint(self) -> dict[str, Any]:
        """``{"config", "state_dict"}``: the model part of every checkpoint (a training
        checkpoint adds its training state beside it)."""
        return {
            "config": self.config_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }

    def save(self, path: str | Path) -> None:
        """Write :meth:`checkpoint` with :func:`crossmodal.checkpoint.save_checkpoint`
        (atomically: a temp file in the same folder, then a rename)."""
        save_checkpoint(path, self.checkpoint())

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> CrossModalModel:
        """Rebuild a model from a model file or a training checkpoint, of this version or
        an earlier one (``torch.load(weights_only=True)``; the encoders' ``pretrained=``
        files are not needed)."""
        payload = load_checkpoint(path, map_location=map_location, what="model file")
        return cls.from_checkpoint(payload, source=str(path)).to(map_location)

    @classmethod
    def from_checkpoint(
        cls, payload: dict[str, Any], source: str = "the checkpoint"
    ) -> CrossModalModel:
        """Rebuild a model from a :func:`~crossmodal.checkpoint.load_checkpoint` payload."""
        if not isinstance(payload.get("config"), dict) or "state_dict" not in payload:
            raise CheckpointError(f"{source} is not a crossmodal model file (no model in it)")
        model = cls.from_config(ModelConfig.from_dict(payload["config"]), load_pretrained=False)
        model.load_weights(payload["state_dict"], source)
        if payload["format_version"] < 2:
            # Indexes built before format 2 know the model by the fingerprint of its file.
            model.legacy_fingerprint = _digest(
                _architecture(payload["config"], _LEGACY_RUNTIME_FIELDS), payload["state_dict"]
            )
        return model

    def load_weights(self, state_dict: Mapping[str, torch.Tensor], source: str = "") -> None:
        """Load a state dict of this model or of a model saved before the towers were keyed
        by modality (its names are mapped; its logit scale, now the loss's, is dropped)."""
        state = {}
        for key, value in state_dict.items():
            if key == "log_logit_scale":
                continue
            for old, new in _LEGACY_PREFIXES.items():
                if key.startswith(old):
                    key = new + key[len(old) :]
                    break
            state[key] = value
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise CheckpointError(
                f"weights in {source or 'the checkpoint'} do not fit its config: {err}"
            ) from err

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the architecture config and every weight (names, dtypes,
        shapes, bytes). Equal fingerprints ⇒ equal embeddings; a retrieval index stores it
        to refuse queries from a different model. The sync gate scores embeddings and does
        not make them, so it is left out: a model file written before the gate existed
        keeps its fingerprint, and the indexes built with it keep working."""
        return _digest(
            _architecture(self.config.to_dict(), _RUNTIME_FIELDS + _SCORING_FIELDS),
            self.state_dict(),
        )


# The runtime fields under their names before the towers were keyed by modality.
_LEGACY_RUNTIME_FIELDS = (
    "freeze_video_backbone",
    "freeze_audio_backbone",
    "video_pretrained",
    "audio_pretrained",
)


def _architecture(config: Mapping[str, Any], runtime: tuple[str, ...]) -> dict[str, Any]:
    # Without a vibe part the vibe heads' input computes nothing: left out too.
    one_part = not config.get("vibe_dim")
    return {
        k: v
        for k, v in config.items()
        if k not in runtime and not (k in _ADDED_FIELDS and (one_part or v == _ADDED_FIELDS[k]))
    }


def _digest(arch: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> str:
    digest = hashlib.sha256(json.dumps(arch, sort_keys=True, default=str).encode())
    for name, tensor in sorted(state.items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
