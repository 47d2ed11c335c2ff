"""musicnn (Pons & Serra 2019): pretrained music taggers, ported to PyTorch.

The architecture follows the paper ("musicnn: pre-trained convolutional neural networks
for music audio tagging", ISMIR 2019 LBD) and the ``musicnn`` 0.1.0 package; the weights
are that package's TensorFlow checkpoints converted by ``tools/musicnn_convert.py`` and
shipped in ``musicnn_weights/`` (ISC licence). Two architectures, each trained on the
Million Song Dataset (``msd``, last.fm tags) and on MagnaTagATune (``mtt``):

- **musicnn**: a musically motivated front end (vertical timbral filters 7×38 and 7×67
  spanning 40 % and 70 % of the mel axis, horizontal temporal filters of 128, 64 and 32
  frames, each max-pooled over frequency), a mid end of three dense-residual 1-D convs
  (64 filters, width 7), a back end of max and mean pooling over time, a 200-unit dense
  layer (the penultimate embedding) and 50 sigmoid tags;
- **vgg**: five 3×3 conv layers of 128 filters with max pooling; its embedding is the
  flattened last pooling (256).

Input: 16 kHz mono, a 512-sample FFT (Hann, centred, reflected edges), hop 256, 96 Slaney
mel bands, the power rounded to float16 as the original does, then ``log10(10000 x + 1)``.
One window is 187 frames (2.976 s). The only departure from the original: power above
float16's range (never reached by audio in [-1, 1]) saturates instead of overflowing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from crossmodal.data.specs import AudioSpec
from crossmodal.encoders.base import EncoderInputError, MusicEncoder
from crossmodal.encoders.music.musicnn_tags import MSD_TAGS, MTT_TAGS
from crossmodal.encoders.pretrained import (
    PretrainedError,
    classify,
    load_into,
    load_state_dict_file,
)

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
WINDOW_FRAMES = 187  # the 3-second input the taggers were trained on
WINDOW_SAMPLES = (WINDOW_FRAMES - 1) * HOP  # centred frames: 187 frames from 47 616 samples
BN_EPS = 1e-3  # TensorFlow's batch-norm default, used in training
FLOAT16_MAX = 65504.0
WEIGHTS_DIR = Path(__file__).with_name("musicnn_weights")

Dataset = Literal["msd", "mtt"]
Architecture = Literal["musicnn", "vgg"]
TAGS: dict[str, tuple[str, ...]] = {"msd": MSD_TAGS, "mtt": MTT_TAGS}


def checkpoint_name(architecture: Architecture, dataset: Dataset) -> str:
    """The original package's name of a model, e.g. ``MSD_musicnn``."""
    return f"{dataset.upper()}_{architecture}"


class MusicnnLogMel(nn.Module):
    """Waveform (B, S) at 16 kHz → musicnn's log-compressed mel spectrogram (B, 96, frames)."""

    def __init__(self) -> None:
        super().__init__()
        import torchaudio

        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        fbanks = torchaudio.functional.melscale_fbanks(
            N_FFT // 2 + 1, 0.0, SAMPLE_RATE / 2, N_MELS, SAMPLE_RATE, "slaney", "slaney"
        )
        self.register_buffer("mel_basis", fbanks.T.contiguous(), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            waveform.float(),
            N_FFT,
            HOP,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        power = self.mel_basis @ spec.abs().square()
        # The original stores the mel power as float16 before the log: keep that rounding.
        power = power.clamp(max=FLOAT16_MAX).half().float()
        return torch.log10(10000.0 * power + 1.0)


class ConvBN(nn.Module):
    """conv → ReLU → batch norm (the original's order: the norm follows the activation)."""

    def __init__(self, conv: nn.Conv1d | nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv
        norm = nn.BatchNorm2d if isinstance(conv, nn.Conv2d) else nn.BatchNorm1d
        self.bn = norm(conv.out_channels, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))


class MusicnnNet(nn.Module):
    """The musicnn tagger on a log-mel (B, 96, T) → (logits (B, 50), embedding (B, 200))."""

    TIMBRAL_WIDTHS = (int(0.4 * N_MELS), int(0.7 * N_MELS))  # 38 and 67 mel bands
    TEMPORAL_LENGTHS = (128, 64, 32)

    def __init__(
        self, num_tags: int = 50, midend_filters: int = 64, backend_units: int = 200
    ) -> None:
        super().__init__()
        timbral_filters, temporal_filters = int(1.6 * 128), int(1.6 * 32)  # 204, 51
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        self.timbral = nn.ModuleList(
            ConvBN(nn.Conv2d(1, timbral_filters, (7, width))) for width in self.TIMBRAL_WIDTHS
        )
        self.temporal = nn.ModuleList(
            ConvBN(nn.Conv2d(1, temporal_filters, (length, 1))) for length in self.TEMPORAL_LENGTHS
        )
        frontend_dim = 2 * timbral_filters + 3 * temporal_filters
        self.midend = nn.ModuleList(
            ConvBN(nn.Conv1d(dim, midend_filters, 7))
            for dim in (frontend_dim, midend_filters, midend_filters)
        )
        pooled = frontend_dim + 3 * midend_filters
        self.pool_bn = nn.BatchNorm1d(2 * pooled, eps=BN_EPS)
        self.dense = nn.Linear(2 * pooled, backend_units)
        self.dense_bn = nn.BatchNorm1d(backend_units, eps=BN_EPS)
        self.classifier = nn.Linear(backend_units, num_tags)
        self.dropout = nn.Dropout(0.5)
        self.embedding_dim = backend_units

    def forward(self, logmel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.input_bn(logmel.transpose(1, 2).unsqueeze(1))  # (B, 1, time, mel)
        # Timbral filters: 'same' in time (3 frames each side), valid in frequency.
        padded = F.pad(x, (0, 0, 3, 3))
        maps = [block(padded).amax(dim=3) for block in self.timbral]
        # Temporal filters: 'same' in time, with TensorFlow's extra frame after for even
        # lengths.
        for block, length in zip(self.temporal, self.TEMPORAL_LENGTHS, strict=True):
            before = (length - 1) // 2
            maps.append(block(F.pad(x, (0, 0, before, length - 1 - before))).amax(dim=3))
        frontend = torch.cat(maps, dim=1)  # (B, 561, time)
        first = self.midend[0](F.pad(frontend, (3, 3)))
        second = self.midend[1](F.pad(first, (3, 3))) + first
        third = self.midend[2](F.pad(second, (3, 3))) + second
        features = torch.cat([frontend, first, second, third], dim=1)  # (B, 753, time)
        # The original flattens (channel, [max, mean]) pairs: keep that interleaving.
        pooled = torch.stack([features.amax(dim=2), features.mean(dim=2)], dim=2).flatten(1)
        hidden = self.dense(self.dropout(self.pool_bn(pooled)))
        embedding = self.dense_bn(F.relu(hidden))
        return self.classifier(self.dropout(embedding)), embedding


class MusicnnVGGNet(nn.Module):
    """The VGG-like baseline tagger on a log-mel (B, 96, 187) → (logits, embedding (B, 256))."""

    # (time, mel) pool sizes; strides equal them except the first (stride 2 × 2).
    POOLS = ((4, 1), (2, 2), (2, 2), (2, 2), (4, 4))

    def __init__(self, num_tags: int = 50, filters: int = 128) -> None:
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        self.blocks = nn.ModuleList(
            ConvBN(nn.Conv2d(1 if i == 0 else filters, filters, 3, padding=1)) for i in range(5)
        )
        time, mel = WINDOW_FRAMES, N_MELS
        for i, pool in enumerate(self.POOLS):
            stride = (2, 2) if i == 0 else pool
            time = (time - pool[0]) // stride[0] + 1
            mel = (mel - pool[1]) // stride[1] + 1
        self.embedding_dim = filters * time * mel
        self.classifier = nn.Linear(self.embedding_dim, num_tags)
        self.dropout = nn.Dropout(0.25)
        self.final_dropout = nn.Dropout(0.5)

    def forward(self, logmel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.input_bn(logmel.transpose(1, 2).unsqueeze(1))  # (B, 1, time, mel)
        for i, (block, pool) in enumerate(zip(self.blocks, self.POOLS, strict=True)):
            if i:
                x = self.dropout(x)
            x = F.max_pool2d(block(x), pool, (2, 2) if i == 0 else pool)
        # TensorFlow flattens channels-last: (time, mel, channel).
        embedding = x.permute(0, 2, 3, 1).flatten(1)
        return self.classifier(self.final_dropout(embedding)), embedding


class MusicnnEncoder(MusicEncoder):
    """A musicnn tagger as a music encoder: waveform (B, 47616) → penultimate embedding.

    ``forward`` returns the embedding (200 for musicnn, 256 for vgg), on which a
    projection head sits; :meth:`tag_probabilities` gives the 50 tag probabilities named
    by :attr:`tag_names`. ``precompute`` is the fixed log-mel front end, cacheable.
    Built with random weights; ``create_encoder(name, pretrained="msd"/"mtt")`` (whichever
    the encoder was trained on) loads the shipped weights offline through
    :meth:`load_pretrained`; a file holding this encoder's ``state_dict()`` also works.
    """

    def __init__(self, *, dataset: Dataset = "msd", architecture: Architecture = "musicnn") -> None:
        super().__init__()
        if dataset not in TAGS:
            raise ValueError(f"dataset must be 'msd' or 'mtt', got {dataset!r}")
        if architecture not in ("musicnn", "vgg"):
            raise ValueError(f"architecture must be 'musicnn' or 'vgg', got {architecture!r}")
        self.dataset = dataset
        self.architecture = architecture
        self.tag_names = TAGS[dataset]
        self.audio_spec = AudioSpec(
            sample_rate=SAMPLE_RATE,
            seconds=WINDOW_SAMPLES / SAMPLE_RATE,
            representation="waveform",
            n_mels=N_MELS,
            n_fft=N_FFT,
            hop_length=HOP,
            f_min=0.0,
            f_max=SAMPLE_RATE / 2,
        )
        self.frontend = MusicnnLogMel()
        self.net = MusicnnNet() if architecture == "musicnn" else MusicnnVGGNet()
        self.output_dim = self.net.embedding_dim

    def load_pretrained(self, pretrained: str | os.PathLike[str]) -> None:
        """Load the shipped weights (``pretrained=dataset``) or a state dict file."""
        text = os.fspath(pretrained)
        if text == self.dataset:
            path = WEIGHTS_DIR / f"{checkpoint_name(self.architecture, self.dataset)}.safetensors"
            if not path.is_file():
                raise PretrainedError(
                    f"no converted weights at {path} (the vgg ones are not shipped); convert "
                    "them once from a crossmodal checkout: pip download --no-deps "
                    "musicnn==0.1.0 -d DIR && python -m tools.musicnn_convert "
                    "DIR/musicnn-0.1.0-py3-none-any.whl"
                )
            load_into(self.net, load_state_dict_file(path), str(path))
            return
        if text in TAGS:
            raise PretrainedError(
                f"this encoder was trained on {self.dataset!r}: use pretrained="
                f"{self.dataset!r} or the encoder of the other dataset"
            )
        kind, where = classify(text)
        if kind != "file":
            raise PretrainedError(
                f"musicnn takes pretrained={self.dataset!r} or a state dict file, got {text!r}"
            )
        load_into(self, load_state_dict_file(where), where)

    def precompute(self, audio: torch.Tensor) -> torch.Tensor:
        """Waveform batch → log-mel (B, 96, 187), the network's input."""
        self.check_input(audio)
        return self.frontend(audio)

    def outputs(self, logmel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-mel (B, 96, T) → (tag logits (B, 50), embedding (B, output_dim)).

        musicnn pools over time and takes any T ≥ 1 window; vgg takes T = 187 only.
        """
        if logmel.dim() != 3 or logmel.shape[1] != N_MELS:
            raise EncoderInputError(
                f"{self.describe()} takes a log-mel (B, {N_MELS}, frames), got {tuple(logmel.shape)}"
            )
        if self.architecture == "vgg" and logmel.shape[2] != WINDOW_FRAMES:
            raise EncoderInputError(
                f"{self.describe()} (vgg) takes windows of {WINDOW_FRAMES} frames, "
                f"got {logmel.shape[2]}"
            )
        return self.net(logmel)

    def embed_precomputed(self, precomputed: torch.Tensor) -> torch.Tensor:
        return self.outputs(precomputed)[1]

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.embed_precomputed(self.precompute(audio))

    def tag_probabilities(self, audio: torch.Tensor) -> torch.Tensor:
        """Waveform batch → tag probabilities (B, 50), in the order of :attr:`tag_names`."""
        return torch.sigmoid(self.outputs(self.precompute(audio))[0])

    def track_windows(self, waveform: torch.Tensor) -> torch.Tensor:
        """A whole mono track (S,) at 16 kHz → its log-mel cut into consecutive 187-frame
        windows (N, 96, 187), as the original tags a file: one spectrogram of the track,
        non-overlapping windows, the incomplete last one dropped. A track shorter than one
        window is repeated to fill it (the originals' training-time padding)."""
        if waveform.dim() != 1 or waveform.numel() == 0:
            raise EncoderInputError(
                f"{self.describe()} tags a non-empty mono waveform (S,), got {tuple(waveform.shape)}"
            )
        if waveform.numel() < WINDOW_SAMPLES:
            waveform = waveform.repeat(-(-WINDOW_SAMPLES // waveform.numel()))[:WINDOW_SAMPLES]
        logmel = self.frontend(waveform.unsqueeze(0))[0]
        count = logmel.shape[1] // WINDOW_FRAMES
        return (
            logmel[:, : count * WINDOW_FRAMES].reshape(N_MELS, count, WINDOW_FRAMES).transpose(0, 1)
        )


# Registry name → (architecture, dataset).
REGISTERED: dict[str, tuple[Architecture, Dataset]] = {
    "musicnn_msd": ("musicnn", "msd"),
    "musicnn_mtt": ("musicnn", "mtt"),
    "musicnn_vgg_msd": ("vgg", "msd"),
    "musicnn_vgg_mtt": ("vgg", "mtt"),
}


def musicnn_description(architecture: Architecture, dataset: Dataset) -> str:
    """The registry description of one tagger."""
    where = "shipped, offline" if architecture == "musicnn" else "after tools/musicnn_convert"
    return (
        f"pretrained musicnn {architecture} tagger ({dataset.upper()}, 50 tags); "
        f"pretrained={dataset!r} ({where})"
    )


def musicnn_builder(architecture: Architecture, dataset: Dataset) -> Callable[..., MusicnnEncoder]:
    """The registry builder of one tagger (architecture and dataset fixed), random init."""

    def build() -> MusicnnEncoder:
        return MusicnnEncoder(dataset=dataset, architecture=architecture)

    build.__doc__ = (
        f"musicnn {architecture} trained on {dataset.upper()}; pretrained={dataset!r} loads "
        "the shipped weights."
    )
    return build


def musicnn_weights(encoder: MusicnnEncoder, pretrained: str | os.PathLike[str]) -> None:
    """The registry's weights loader: :meth:`MusicnnEncoder.load_pretrained`."""
    encoder.load_pretrained(pretrained)
