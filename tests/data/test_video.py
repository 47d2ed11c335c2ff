from __future__ import annotations

import numpy as np
import pytest
import torch

from crossmodal.data import (
    TooShortError,
    VideoFile,
    VideoSpec,
    decode_segment,
    load_video_windows,
    normalize_frames,
    window_frame_times,
)
from crossmodal.data.video import frames_from_segment


def test_window_frame_times_follow_the_spec() -> None:
    uniform = window_frame_times(VideoSpec(num_frames=4), start=1.0, window=2.0)
    np.testing.assert_allclose(uniform, [1.25, 1.75, 2.25, 2.75])
    rated = window_frame_times(VideoSpec(num_frames=3, fps=6.0), start=0.5, window=4.0)
    np.testing.assert_allclose(rated, [0.5, 0.5 + 1 / 6, 0.5 + 2 / 6])


def test_frames_at_times_are_the_frames_on_screen(make_video, helpers) -> None:
    path = make_video(frames=48, fps=12)
    spec = VideoSpec(num_frames=5, height=32, width=24)
    video = VideoFile(path, spec)
    times = np.array([0.0, 0.04, 0.0834, 1.5, 3.99])
    frames = video.frames_at(times)
    assert frames.shape == (5, 32, 24, 3)  # decoded at the spec's size
    assert frames.dtype == np.uint8
    # Frame f is on screen during [f/12, (f+1)/12).
    np.testing.assert_array_equal(
        helpers.decoded_index(frames), np.floor(times * 12 + 1e-6).astype(int)
    )


def test_repeated_indices_when_sampling_faster_than_the_video(make_video, helpers) -> None:
    path = make_video(frames=24, fps=6)
    spec = VideoSpec(num_frames=8, height=16, width=16, fps=24.0)
    (window,) = load_video_windows(path, spec, [1.0], 8 / 24, normalize=False).numpy()
    np.testing.assert_array_equal(helpers.decoded_index(window), [6, 6, 6, 6, 7, 7, 7, 7])


def test_variable_frame_rate_uses_each_frames_timestamp(make_video, helpers) -> None:
    times = np.array([0.0, 0.1, 0.15, 0.2, 0.9, 1.0, 1.6, 1.65, 1.7, 2.5])
    path = make_video(frames=len(times), frame_times=times, audio=None)
    video = VideoFile(path, VideoSpec(height=16, width=16))
    np.testing.assert_allclose(video.starts, times, atol=1e-3)
    queries = np.array([0.05, 0.17, 0.5, 0.95, 1.2, 1.66, 2.0, 2.55])
    expected = np.searchsorted(times, queries, side="right") - 1  # last frame shown by then
    np.testing.assert_array_equal(helpers.decoded_index(video.frames_at(queries)), expected)


def test_windows_normalised_channels_first(make_video, helpers) -> None:
    path = make_video(frames=48, fps=12)
    spec = VideoSpec(num_frames=4, height=16, width=16)
    raw = load_video_windows(path, spec, [0.0, 2.0], 2.0, normalize=False)
    norm = load_video_windows(path, spec, [0.0, 2.0], 2.0)
    assert raw.shape == (2, 4, 16, 16, 3)
    assert norm.shape == (2, 3, 4, 16, 16)
    assert norm.dtype == torch.float32
    # Reference: the formula on the uint8 frames, channel by channel, in float64.
    x = raw.numpy().astype(np.float64) / 255.0
    for c in range(3):
        expected = (x[..., c] - spec.mean[c]) / spec.std[c]
        np.testing.assert_allclose(norm[:, c].numpy(), expected, atol=1e-5)
    # Bins of a 2 s window at 12 fps: centres at 0.25, 0.75, ... → frames 3, 9, 15, 21.
    np.testing.assert_array_equal(helpers.decoded_index(raw[0].numpy()), [3, 9, 15, 21])
    np.testing.assert_array_equal(helpers.decoded_index(raw[1].numpy()), [27, 33, 39, 45])


def test_normalize_accepts_tensors_and_leading_dims() -> None:
    spec = VideoSpec()
    frames = torch.randint(0, 256, (2, 3, 5, 4, 4, 3), dtype=torch.uint8)
    out = normalize_frames(frames, spec)
    assert out.shape == (2, 3, 3, 5, 4, 4)
    np.testing.assert_allclose(
        out[1, 2, 0].numpy(),
        (frames[1, 2, ..., 0].numpy() / 255.0 - spec.mean[0]) / spec.std[0],
        atol=1e-5,
    )


def test_window_past_the_end_is_a_specific_error(make_video, helpers) -> None:
    path = make_video(frames=24, fps=12)
    spec = VideoSpec(num_frames=4, height=16, width=16)
    # Up to max(1 s, 5 %) past the last frame is a stream ending early: the last frame holds.
    (held,) = load_video_windows(path, spec, [1.0], 2.0, normalize=False).numpy()
    # frame times 1.25, 1.75, 2.25, 2.75 s (bin centres): frames 15, 21, then 23 held
    np.testing.assert_array_equal(helpers.decoded_index(held), [15, 21, 23, 23])
    with pytest.raises(TooShortError, match=r"video ends at 2\.000 s"):
        load_video_windows(path, spec, [1.5], 2.0)


def test_segment_decode_matches_direct_decode(make_video) -> None:
    path = make_video(frames=48, fps=12)
    spec = VideoSpec(num_frames=6, height=16, width=16)
    frames, starts = decode_segment(path, spec, 0.5, 3.5)
    assert len(frames) == 36
    assert starts[0] == pytest.approx(0.5)
    video = VideoFile(path, spec)
    for start in (0.5, 1.2, 1.5):
        times = window_frame_times(spec, start, 2.0)
        np.testing.assert_array_equal(
            frames_from_segment(frames, starts, times), video.frames_at(times)
        )


@pytest.mark.parametrize(("height", "width"), [(32, 32), (16, 16), (48, 48), (24, 40), (40, 24)])
def test_scaled_frames_keep_their_layout(make_video, height: int, width: int) -> None:
    # Red ramps left→right, green top→bottom: a padded, transposed or shifted frame (decord
    # pads rows at some sizes) would break the ramps. Reference: the same picture scaled
    # by torch from the generated frame.
    y, x = np.mgrid[0:64, 0:64]
    picture = np.stack([x * 4, y * 4, np.full_like(x, 128)], axis=-1).clip(0, 255).astype(np.uint8)
    path = make_video(frames=np.repeat(picture[None], 6, axis=0), fps=6, audio=None)
    frames = VideoFile(path, VideoSpec(height=height, width=width)).frames([0, 3])
    reference = (
        torch.nn.functional.interpolate(
            torch.from_numpy(picture).permute(2, 0, 1)[None].float(),
            size=(height, width),
            mode="bilinear",
            antialias=True,
        )[0]
        .permute(1, 2, 0)
        .numpy()
    )
    assert frames.shape == (2, height, width, 3)
    for frame in frames:
        assert np.abs(frame.astype(np.float64) - reference).mean() < 8.0
