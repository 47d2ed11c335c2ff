"""Interpretable music descriptors computed with librosa (numpy, CPU).

:func:`compute_descriptors` is deterministic and has no trainable part, so its output
is what a frozen :class:`~crossmodal.encoders.music.descriptor_encoder.DescriptorEncoder`
computes before its network.
"""

from __future__ import annotations

import numpy as np

from crossmodal.encoders.music.beats import track_beats

CHROMA_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
CONTRAST_BANDS = 6  # spectral_contrast returns bands + 1 rows (the last is the valley)


def descriptor_names(n_mfcc: int = 13) -> tuple[str, ...]:
    """Names of the rows of :func:`compute_descriptors`' output, in order."""
    return (
        "onset_strength",
        "beat_pulse",
        "log_rms",
        "tempo",
        *(f"chroma_{c}" for c in CHROMA_NAMES),
        *(f"mfcc_{i}" for i in range(n_mfcc)),
        *(f"contrast_{i}" for i in range(CONTRAST_BANDS + 1)),
    )


def num_frames(num_samples: int, hop_length: int) -> int:
    """Frames per clip (librosa's centred framing)."""
    return 1 + num_samples // hop_length


def compute_descriptors(
    waveform: np.ndarray,
    sample_rate: int,
    hop_length: int = 512,
    n_fft: int = 2048,
    n_mfcc: int = 13,
) -> np.ndarray:
    """Frame-wise descriptors of one mono clip: float32 (F, 1 + S // hop_length).

    Rows (see :func:`descriptor_names`), all at ``hop_length``:

    - ``onset_strength``: spectral flux onset envelope (``librosa.onset.onset_strength``);
    - ``beat_pulse``: 1 at the beat frames (:func:`~crossmodal.encoders.music.beats.track_beats`
      at the ``librosa.feature.tempo`` estimate), a Gaussian fall-off of one frame, 0 elsewhere;
    - ``log_rms``: ``log(RMS + 1e-5)`` of each frame (loudness envelope);
    - ``tempo``: the estimated tempo in BPM / 120, constant over the clip (0 if no beats);
    - 12 chroma bins (``chroma_stft``, per-frame max-normalised), ``n_mfcc`` MFCCs, and 7
      rows of spectral contrast (6 bands + valley, in dB).

    Silence gives finite values (zeros for onsets/beats/tempo/chroma).
    """
    import librosa

    y = np.asarray(waveform, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"compute_descriptors takes one mono clip (S,), got shape {y.shape}")
    if y.size < n_fft:
        raise ValueError(f"clip of {y.size} samples is shorter than n_fft={n_fft}")
    frames = num_frames(y.size, hop_length)
    stft = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length))
    onset = librosa.onset.onset_strength(y=y, sr=sample_rate, hop_length=hop_length)
    tempo = float(
        librosa.feature.tempo(onset_envelope=onset, sr=sample_rate, hop_length=hop_length)[0]
    )
    beats = track_beats(onset, 60.0 * sample_rate / hop_length / tempo) if tempo > 0 else []
    tempo = tempo if len(beats) else 0.0
    pulse = np.zeros(frames, dtype=np.float32)
    positions = np.arange(frames)
    for b in beats:
        pulse = np.maximum(pulse, np.exp(-0.5 * (positions - b) ** 2))
    rms = librosa.feature.rms(S=stft, frame_length=n_fft, hop_length=hop_length)[0]
    # tuning=0: A440 reference; estimating it per clip is slow and unstable on short clips
    chroma = librosa.feature.chroma_stft(
        S=stft**2, sr=sample_rate, n_fft=n_fft, hop_length=hop_length, tuning=0.0
    )
    mfcc = librosa.feature.mfcc(
        y=y, sr=sample_rate, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop_length
    )
    contrast = librosa.feature.spectral_contrast(
        S=stft,
        sr=sample_rate,
        n_fft=n_fft,
        hop_length=hop_length,
        n_bands=CONTRAST_BANDS,
        fmin=min(200.0, sample_rate / 2 ** (CONTRAST_BANDS + 2)),
    )
    rows = [
        _fit(onset, frames),
        pulse[None],
        np.log(_fit(rms, frames) + 1e-5),
        np.full((1, frames), tempo / 120.0, dtype=np.float32),
        _fit(chroma, frames),
        _fit(mfcc, frames),
        _fit(contrast, frames),
    ]
    out = np.concatenate(rows, axis=0).astype(np.float32)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def compute_descriptors_batch(
    waveforms: np.ndarray,
    sample_rate: int,
    hop_length: int = 512,
    n_fft: int = 2048,
    n_mfcc: int = 13,
) -> np.ndarray:
    """:func:`compute_descriptors` over a (B, S) batch → float32 (B, F, frames)."""
    waveforms = np.asarray(waveforms)
    if waveforms.ndim != 2:
        raise ValueError(f"expected a (B, S) batch of waveforms, got shape {waveforms.shape}")
    return np.stack(
        [compute_descriptors(w, sample_rate, hop_length, n_fft, n_mfcc) for w in waveforms]
    )


def _fit(feature: np.ndarray, frames: int) -> np.ndarray:
    # librosa's features all use centred frames, but guard against an off-by-one.
    feature = np.atleast_2d(feature)
    if feature.shape[-1] >= frames:
        return feature[..., :frames]
    return np.pad(feature, ((0, 0), (0, frames - feature.shape[-1])), mode="edge")
