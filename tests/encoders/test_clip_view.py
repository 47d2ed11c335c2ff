"""Every tower's clip view (what the vibe heads read with ``vibe_input: clip``): the mean
over time of what a time-binned output keeps, the clip-level parts as they are."""

from __future__ import annotations

import pytest
import torch

from crossmodal.encoders import create_encoder
from crossmodal.encoders.base import Encoder
from crossmodal.encoders.temporal import TimeBinsPool, pooled_clip_dim, pooled_clip_view
from crossmodal.encoders.temporal.mean import MeanPool


def bin_means(steps: torch.Tensor, bins: int) -> torch.Tensor:
    """(B, C, T) → (B, C, bins): each bin's mean, bin i spanning steps
    floor(i·T/bins) … ceil((i+1)·T/bins) − 1 (adaptive pooling's edges), by a loop."""
    t = steps.shape[-1]
    cols = []
    for i in range(bins):
        lo, hi = (i * t) // bins, -((-(i + 1) * t) // bins)
        cols.append(steps[..., lo:hi].mean(dim=-1))
    return torch.stack(cols, dim=-1)


def test_time_bins_clip_mean_is_the_mean_over_time() -> None:
    x = torch.randn(3, 24, 5)  # (B, T, C); 24 steps fill 6 bins of 4 exactly
    pool = TimeBinsPool(5, 6)
    pooled = pool(x)
    assert pooled_clip_dim(pool) == 5
    torch.testing.assert_close(pooled_clip_view(pool, pooled), x.mean(dim=1))
    # A pool without bins already gives a clip-level vector: returned unchanged.
    mean = MeanPool(5)
    assert pooled_clip_dim(mean) == 5
    torch.testing.assert_close(pooled_clip_view(mean, mean(x)), x.mean(dim=1))


def test_video_tiny_clip_view_is_the_temporal_steps_mean() -> None:
    encoder = create_encoder("video_tiny", num_frames=8, size=16, num_bins=4, channels=[8, 8])
    encoder.eval()
    video = encoder.example_input(2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        features = encoder(video)
        steps = encoder.temporal(encoder.frame_features(video).transpose(1, 2))  # (B, C, T)
        view = encoder.clip_view(features)
    assert view.shape == (2, encoder.clip_dim) == (2, 32)
    torch.testing.assert_close(view, steps.mean(dim=-1))


@pytest.mark.parametrize("summary_lags", [0, 20])
def test_music_tiny_clip_view_is_the_steps_mean_then_the_summary(summary_lags: int) -> None:
    encoder = create_encoder(
        "audio_tiny",
        n_mels=16,
        seconds=4.0,
        hop_length=1600,
        num_bins=4,
        channels=[4, 4, 4],
        summary_lags=summary_lags,
        summary_dim=8,
    ).eval()
    audio = encoder.example_input(2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        features = encoder(audio)
        mel = encoder._normalised_mel(audio)
        steps = encoder.temporal(encoder._maps_to_steps(mel))  # (B, C, T)
        view = encoder.clip_view(features)
    width = encoder.pool.output_dim
    assert view.shape == (2, encoder.clip_dim)
    assert encoder.clip_dim == 32 + (8 if summary_lags else 0)
    torch.testing.assert_close(view[:, :32], bin_means(steps, 4).mean(dim=-1))
    torch.testing.assert_close(view[:, 32:], features[:, width:])
    # Unequal bins weigh a step by at most one step in a bin: close to the plain mean.
    assert steps.shape[-1] % 4  # (the case where the two differ)
    torch.testing.assert_close(view[:, :32], steps.mean(dim=-1), atol=0.05, rtol=0.0)


def test_descriptor_encoder_clip_view_keeps_the_statistics() -> None:
    encoder = create_encoder("descriptors", seconds=2.0, pool="bins", num_bins=4).eval()
    audio = encoder.example_input(2, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        features = encoder(audio)
        view = encoder.clip_view(features)
    stats = encoder.output_dim - encoder.pool.output_dim
    assert view.shape == (2, encoder.clip_dim) == (2, stats + encoder.pool.output_dim // 4)
    torch.testing.assert_close(view[:, :stats], features[:, :stats])
    binned = features[:, stats:].view(2, -1, 4)
    torch.testing.assert_close(view[:, stats:], binned.mean(dim=-1))


def test_default_clip_view_is_the_features() -> None:
    # An encoder that pools time away keeps the base class's clip view: its output.
    encoder = create_encoder("logmel_cnn")
    assert type(encoder).clip_view is Encoder.clip_view
    features = torch.randn(2, encoder.output_dim)
    assert encoder.clip_dim == encoder.output_dim
    torch.testing.assert_close(encoder.clip_view(features), features)
    # A tower with a pool that is not bins (here the mean) gives its output too.
    tiny = create_encoder("audio_tiny", n_mels=16, seconds=4.0, hop_length=1600, pool="mean")
    assert tiny.clip_dim == tiny.output_dim
    tiny_features = torch.randn(2, tiny.output_dim)
    torch.testing.assert_close(tiny.clip_view(tiny_features), tiny_features)
