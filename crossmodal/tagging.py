"""Music tags from the pretrained musicnn taggers: what a track sounds like, in words.

:class:`Tagger` tags a whole track as the original musicnn does (one spectrogram of the
track, consecutive 3-second windows) and averages the windows' tag probabilities.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from crossmodal.errors import CrossmodalError

TAGGER_MODELS = ("msd", "mtt")


def tag_names(model: str) -> tuple[str, ...]:
    """The tags of tagger ``model`` (``"msd"`` or ``"mtt"``), in output order."""
    from crossmodal.encoders.music.musicnn_tags import MSD_TAGS, MTT_TAGS

    if model not in TAGGER_MODELS:
        raise CrossmodalError(f"tagger model must be one of {TAGGER_MODELS}, got {model!r}")
    return MSD_TAGS if model == "msd" else MTT_TAGS


@dataclass(frozen=True)
class TrackTags:
    """The tag probabilities of one track, windows averaged (in the tagger's tag order)."""

    model: str
    probabilities: np.ndarray  # (num_tags,) float32
    num_windows: int

    @property
    def names(self) -> tuple[str, ...]:
        return tag_names(self.model)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (probabilities to 6 decimals: mood tags are often ~1e-3),
        as the index catalog keeps it."""
        return {
            "model": self.model,
            "windows": self.num_windows,
            "probabilities": [round(float(p), 6) for p in self.probabilities],
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> TrackTags:
        probabilities = np.asarray(data["probabilities"], dtype=np.float32)
        return cls(str(data["model"]), probabilities, int(data.get("windows", 0)))  # type: ignore[arg-type]

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most probable tags as (name, probability), most probable first."""
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        return [(self.names[i], float(self.probabilities[i])) for i in order]

    def probability(self, tag: str) -> float:
        """The probability of ``tag`` (an error naming the known tags if it is not one)."""
        return float(self.probabilities[tag_index(self.names, tag)])


def tag_index(names: tuple[str, ...], tag: str) -> int:
    """Position of ``tag`` in ``names``, case-insensitive; a clear error when unknown."""
    folded = [n.casefold() for n in names]
    if tag.casefold() not in folded:
        raise CrossmodalError(f"unknown tag {tag!r}; the tagger knows: {', '.join(names)}")
    return folded.index(tag.casefold())


class Tagger:
    """Whole-track tagging with a shipped musicnn model (``"msd"``: 50 last.fm tags,
    moods among them; ``"mtt"``: 50 MagnaTagATune tags). Runs offline, on CPU by default.
    """

    def __init__(
        self, model: str = "msd", batch_size: int = 16, device: str | torch.device = "cpu"
    ) -> None:
        from crossmodal.encoders import create_encoder

        tag_names(model)  # checks the name
        self.model = model
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.encoder = create_encoder(f"musicnn_{model}", pretrained=model).eval().to(self.device)
        self.sample_rate = self.encoder.audio_spec.sample_rate

    @property
    def tag_names(self) -> tuple[str, ...]:
        return self.encoder.tag_names

    @torch.no_grad()
    def tag_waveform(self, waveform: np.ndarray | torch.Tensor) -> TrackTags:
        """Tags of a mono track (S,) at the tagger's sample rate (16 kHz)."""
        wave = torch.as_tensor(np.asarray(waveform, dtype=np.float32)).to(self.device)
        windows = self.encoder.track_windows(wave)
        total = torch.zeros(len(self.tag_names), device=self.device)
        for start in range(0, len(windows), self.batch_size):
            logits, _ = self.encoder.outputs(windows[start : start + self.batch_size])
            total += torch.sigmoid(logits).sum(dim=0)
        probabilities = (total / len(windows)).cpu().numpy().astype(np.float32)
        return TrackTags(self.model, probabilities, len(windows))

    def tag_file(self, path: str | os.PathLike[str]) -> TrackTags:
        """Tags of a music file or a video's soundtrack (decoded by the data layer, whose
        errors say what is wrong with the file)."""
        from crossmodal.data.audio import load_audio

        wave, _ = load_audio(path, self.sample_rate)
        return self.tag_waveform(wave)
