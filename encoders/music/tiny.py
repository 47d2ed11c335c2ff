"""``audio_tiny``: a CPU-sized music tower that keeps time until late."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from crossmodal.data.logmel import LogMel
from crossmodal.data.specs import AudioSpec
from crossmodal.encoders.base import MusicEncoder
from crossmodal.encoders.temporal import (
    TemporalConvNet,
    build_temporal_pool,
    pooled_clip_dim,
    pooled_clip_view,
)

# The harmony summary's pitch range (MIDI; 41 Hz … 2.1 kHz) and width: best major and
# minor key correlations, their difference, and the tonic-rotated chroma.
HARMONY_LOWEST = 28
HARMONY_HIGHEST = 96
HARMONY_FEATURES = 3 + 12
# Krumhansl & Kessler's (1982) probe-tone ratings of the 12 pitch classes above a major
# and a minor tonic: the standard key-finding templates.
KEY_PROFILE_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KEY_PROFILE_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


class MusicTiny(MusicEncoder):
    """Log-mel → conv over (frequency, time) that folds frequency away → temporal convs
    → pooling.

    Input (default spec): a 4 s log-mel at 16 kHz, 40 mels, n_fft 1024, hop 320 (50
    frames/s, 201 frames). With ``representation="waveform"`` it takes the waveform and
    applies :class:`~crossmodal.data.logmel.LogMel` itself. Each mel bin is normalised by
    BatchNorm (loudness differences between clips survive; no per-clip normalisation).
    Three 3×3 conv-BN-ReLU layers with strides (2,1), (2,2), (2,2) reduce 201 frames to
    51 steps (≈12.75/s, close to the video tower's 12 fps); the channels × remaining
    mel bins are flattened into one vector per step, then
    :class:`~crossmodal.encoders.temporal.TemporalConvNet` and ``pool`` as in
    ``video_tiny``. Output width: ``out_channels × num_bins`` for ``bins``, else
    ``out_channels``.

    ``summary_lags`` > 0 adds a clip-level summary beside the pooled steps, for what a
    piece *is* rather than when its events fall (mood, genre): each normalised mel bin's
    mean and standard deviation over the clip (register, timbre, loudness, dynamics) and
    the autocorrelation of the onset envelope (the mean positive change over mel bins)
    at lags 1 … ``summary_lags`` frames (its periodicity: tempo and metre, read
    at every octave at once). Parameter-free up to the input BatchNorm; then BatchNorm →
    Linear → ReLU to ``summary_dim`` values appended to the output (width
    ``+ summary_dim``). The convolutional path alone sees about a second at a time and
    pools by position, so it learns these clip-wide statistics poorly (on the synthetic
    corpus's 840 training clips a linear classifier on the summary names the mood of
    0.75 of test clips, the trained convolutional tower 0.63; bench/results/mood_ceiling.md).

    ``harmony`` (needs ``summary_lags`` > 0 and ``representation="waveform"``: a mel
    spectrogram cannot tell neighbouring semitones apart in the bass) adds the clip's
    key and mode to the summary, see :meth:`harmony_statistics`: major against minor
    is the best-known musical cue of a mood's valence, and nothing else in the tower can
    hear it.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        seconds: float = 4.0,
        n_mels: int = 40,
        n_fft: int = 1024,
        hop_length: int = 320,
        representation: Literal["logmel", "waveform"] = "logmel",
        channels: tuple[int, ...] | list[int] = (16, 32, 32),
        temporal_channels: int = 64,
        temporal_layers: int = 3,
        out_channels: int = 32,
        pool: str = "bins",
        num_bins: int = 24,
        summary_lags: int = 0,
        summary_dim: int = 64,
        harmony: bool = False,
    ) -> None:
        super().__init__()
        if len(channels) != 3:
            raise ValueError(f"channels must list 3 widths, got {channels}")
        self.audio_spec = AudioSpec(
            sample_rate=sample_rate,
            seconds=seconds,
            representation=representation,
            n_mels=n_mels,
            n_fft=n_fft,
            hop_length=hop_length,
        )
        self.frontend = LogMel(self.audio_spec) if representation == "waveform" else None
        self.norm = nn.BatchNorm1d(n_mels)
        strides = ((2, 1), (2, 2), (2, 2))
        layers: list[nn.Module] = []
        in_ch, mels, steps = 1, n_mels, self.audio_spec.num_mel_frames
        for out_ch, (sf, st) in zip(channels, strides, strict=True):
            layers += [
                nn.Conv2d(in_ch, out_ch, 3, (sf, st), 1, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(inplace=True),
            ]
            in_ch, mels, steps = out_ch, (mels - 1) // sf + 1, (steps - 1) // st + 1
        self.conv = nn.Sequential(*layers)
        self.num_steps = steps
        self.temporal = TemporalConvNet(
            in_ch * mels, temporal_channels, temporal_layers, out_dim=out_channels
        )
        self.pool = build_temporal_pool(pool, out_channels, steps, num_bins=num_bins)
        self.output_dim = self.pool.output_dim
        frames = self.audio_spec.num_mel_frames
        if summary_lags < 0 or summary_dim < 1:
            raise ValueError(
                f"summary_lags must be >= 0 and summary_dim >= 1, got {summary_lags}, {summary_dim}"
            )
        if summary_lags and summary_lags >= frames - 1:
            raise ValueError(
                f"summary_lags={summary_lags} must be below the {frames - 1} onset frames of a clip"
            )
        if harmony and (not summary_lags or representation != "waveform"):
            raise ValueError(
                "harmony needs summary_lags > 0 and representation='waveform' (the key is "
                f"read from the waveform), got summary_lags={summary_lags}, "
                f"representation={representation!r}"
            )
        self.summary_lags = summary_lags
        self.harmony = harmony
        if harmony:
            self._init_harmony(sample_rate)
        self.summary: nn.Module | None = None
        if summary_lags:
            width = 2 * n_mels + summary_lags + (HARMONY_FEATURES if harmony else 0)
            self.summary = nn.Sequential(
                nn.BatchNorm1d(width), nn.Linear(width, summary_dim), nn.ReLU(inplace=True)
            )
            self.output_dim += summary_dim

    def _init_harmony(self, sample_rate: int) -> None:
        # 2–3 Hz per STFT bin (8192 points at 16 kHz: a window of half a second, the
        # harmony is read from what is held), so that semitones are apart down to the
        # bass (MIDI 28 is 41 Hz, its neighbour 2.5 Hz away); a shorter clip gets the
        # longest window it holds.
        samples = self.audio_spec.num_samples
        self.harmony_fft = min(
            2 ** math.ceil(math.log2(sample_rate / 3)), 2 ** int(math.log2(max(samples, 2)))
        )
        self.harmony_hop = self.harmony_fft // 8
        freqs = torch.arange(self.harmony_fft // 2 + 1, dtype=torch.float64)
        freqs = freqs * sample_rate / self.harmony_fft
        midi = 69.0 + 12.0 * torch.log2(freqs.clamp_min(1.0) / 440.0)
        top = min(HARMONY_HIGHEST, int(69 + 12 * math.log2(0.45 * sample_rate / 440.0)))
        pitches = torch.arange(HARMONY_LOWEST, top + 1, dtype=torch.float64)
        # Triangular semitone filters (each bin shared by its two nearest semitones).
        bank = (1.0 - (midi[None, :] - pitches[:, None]).abs()).clamp_min(0.0)
        bank[:, freqs < 20.0] = 0.0
        # Only the bins below the top semitone's filter take part.
        self.harmony_bins = int(torch.nonzero(bank.sum(0)).max()) + 1
        bank = bank[:, : self.harmony_bins]
        fold = torch.zeros(12, len(pitches), dtype=torch.float64)
        fold[pitches.long() % 12, torch.arange(len(pitches))] = 1.0
        fold = fold / fold.sum(1, keepdim=True)  # a mean over octaves: no class counts twice
        self.register_buffer("harmony_bank", bank.float(), persistent=False)
        self.register_buffer("harmony_fold", fold.float(), persistent=False)
        self.register_buffer(
            "harmony_window", torch.hann_window(self.harmony_fft), persistent=False
        )
        profiles = []
        for profile in (KEY_PROFILE_MAJOR, KEY_PROFILE_MINOR):
            p = torch.tensor(profile, dtype=torch.float64)
            p = (p - p.mean()) / p.std(unbiased=False)
            # Row k: the profile of the key whose tonic is pitch class k.
            profiles.append(torch.stack([torch.roll(p, k) for k in range(12)]))
        self.register_buffer("key_profiles", torch.stack(profiles).float(), persistent=False)

    def held_chroma(self, audio: torch.Tensor) -> torch.Tensor:
        """Waveform (B, samples) → (B, 12) chroma of what the clip holds, summing to 1
        (pitch class 0 = C); see :meth:`harmony_statistics`."""
        spectrum = torch.stft(
            audio.float(),
            self.harmony_fft,
            hop_length=self.harmony_hop,
            window=self.harmony_window,
            return_complex=True,
        )
        spectrum = spectrum[:, : self.harmony_bins]
        power = spectrum.real**2 + spectrum.imag**2  # (B, bins, frames)
        semitones = torch.log(torch.matmul(self.harmony_bank, power) + 1e-10)
        held = semitones.median(dim=-1).values  # (B, pitches)
        held = torch.exp(held - held.max(dim=-1, keepdim=True).values)
        chroma = held @ self.harmony_fold.T
        chroma = chroma / chroma.sum(-1, keepdim=True).clamp_min(1e-12)
        return chroma

    def harmony_statistics(self, audio: torch.Tensor) -> torch.Tensor:
        """Waveform (B, samples) → (B, 15): the key and mode of what the clip *holds*.

        A semitone spectrogram (MIDI 28 … 96, STFT bins of 2–3 Hz), its log power's
        median over time per semitone (what sounds through the clip: held chords, pads,
        drones; a passing melody note weighs less), folded into a 12-bin chroma that
        sums to 1. Then the Krumhansl–Kessler key-finding correlation with the major and
        minor profiles in all 12 keys: the best major and the best minor correlation and
        their difference (the mode), plus the chroma rotated so that the best-fitting key's
        tonic comes first (the intervals above the tonic: a major or a minor third).
        A silent clip gives a flat chroma and zero correlations.
        """
        # In float32 whatever autocast says: the power of an 8192-point STFT overflows
        # float16, and its floor (1e-10) rounds to 0 there.
        with torch.autocast(audio.device.type, enabled=False):
            return self._harmony_statistics(audio.float())

    def _harmony_statistics(self, audio: torch.Tensor) -> torch.Tensor:
        chroma = self.held_chroma(audio)
        centred = chroma - chroma.mean(-1, keepdim=True)
        z = centred / centred.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-6)
        fits = torch.einsum("bc,mkc->bmk", z, self.key_profiles) / 12.0
        best = fits.max(dim=-1).values  # (B, 2): major, minor
        tonic = fits.flatten(1).argmax(dim=-1, keepdim=True) % 12  # the best key's tonic
        order = (tonic + torch.arange(12, device=chroma.device)) % 12
        rotated = chroma.gather(-1, order)
        return torch.cat([best, best[:, :1] - best[:, 1:], rotated], dim=-1)

    def _normalised_mel(self, audio: torch.Tensor) -> torch.Tensor:
        mel = self.frontend(audio) if self.frontend is not None else audio
        return self.norm(mel)

    def _maps_to_steps(self, mel: torch.Tensor) -> torch.Tensor:
        maps = self.conv(mel.unsqueeze(1))
        b, c, f, t = maps.shape
        return maps.reshape(b, c * f, t)

    def step_features(self, audio: torch.Tensor) -> torch.Tensor:
        """Input batch → (B, C·mels', steps) before the temporal convs."""
        return self._maps_to_steps(self._normalised_mel(audio))

    def clip_statistics(self, mel: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel (B, mels, frames) → (B, 2·mels + summary_lags): per-bin mean
        and standard deviation over time, then the onset envelope's autocorrelation at
        lags 1 … summary_lags divided by its lag-0 value (0 for a clip without change)."""
        mean = mel.mean(-1)
        std = mel.std(-1)
        onset = torch.relu(mel[..., 1:] - mel[..., :-1]).mean(1)  # (B, frames - 1)
        onset = onset - onset.mean(-1, keepdim=True)
        n = onset.shape[-1]
        # Autocorrelation through the FFT, zero-padded to 2n so lags do not wrap around.
        spectrum = torch.fft.rfft(onset.float(), n=2 * n)
        acf = torch.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=2 * n)[..., :n]
        lags = acf[..., 1 : self.summary_lags + 1] / acf[..., :1].clamp_min(1e-6)
        return torch.cat([mean, std, lags.to(mean.dtype)], dim=-1)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        self.check_input(audio)
        mel = self._normalised_mel(audio)
        steps = self.temporal(self._maps_to_steps(mel))
        pooled = self.pool(steps.transpose(1, 2))
        if self.summary is None:
            return pooled
        stats = self.clip_statistics(mel)
        if self.harmony:
            stats = torch.cat([stats, self.harmony_statistics(audio).to(stats.dtype)], dim=-1)
        return torch.cat([pooled, self.summary(stats)], dim=-1)

    @property
    def clip_dim(self) -> int:
        return pooled_clip_dim(self.pool) + self.output_dim - self.pool.output_dim

    def clip_view(self, features: torch.Tensor) -> torch.Tensor:
        """The time bins' mean, then the clip summary as it is: see
        :meth:`Encoder.clip_view`."""
        width = self.pool.output_dim
        pooled = pooled_clip_view(self.pool, features[:, :width])
        return torch.cat([pooled, features[:, width:]], dim=-1)
