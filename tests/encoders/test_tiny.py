"""video_tiny and audio_tiny internals against straightforward formulations."""

from __future__ import annotations

import pytest
import torch

from crossmodal.data.logmel import LogMel
from crossmodal.encoders import create_encoder


@pytest.mark.parametrize("motion", [True, False])
def test_video_tiny_frame_features_match_a_plain_formulation(motion: bool) -> None:
    encoder = create_encoder("video_tiny", motion=motion, size=16, num_frames=6).eval()
    video = encoder.example_input(2)
    b, _, t, h, w = video.shape
    channels = [video]
    if motion:
        diff = torch.zeros_like(video)
        diff[:, :, 1:] = video[:, :, 1:] - video[:, :, :-1]
        channels.append(diff)
    frames = torch.cat(channels, dim=1).transpose(1, 2).reshape(b * t, -1, h, w)
    with torch.no_grad():
        maps = encoder.stem(frames)
        expected = torch.cat([maps.mean(dim=(2, 3)), maps.amax(dim=(2, 3))], dim=1).view(b, t, -1)
        torch.testing.assert_close(encoder.frame_features(video), expected)


def test_video_tiny_sees_motion_that_single_frames_do_not_show() -> None:
    # the same frames in another order: identical per-frame content, different motion
    encoder = create_encoder("video_tiny", size=16, num_frames=6).eval()
    video = encoder.example_input(1)
    shuffled = video[:, :, torch.tensor([0, 2, 1, 3, 5, 4])]
    with torch.no_grad():
        a, b = encoder.frame_features(video), encoder.frame_features(shuffled)
    # frame 0 has no predecessor in both, so it matches; frame 1 now follows frame 0 with
    # different content, so its motion features differ
    torch.testing.assert_close(a[0, 0], b[0, 0])
    assert not torch.allclose(a[0, 2], b[0, 1])


def test_input_gradients_flow_through_the_motion_channel() -> None:
    encoder = create_encoder("video_tiny", size=16, num_frames=6)
    video = encoder.example_input(2).requires_grad_(True)
    encoder(video).sum().backward()
    assert video.grad is not None
    assert video.grad.abs().sum() > 0


def test_audio_tiny_time_resolution_is_close_to_the_video_frame_rate() -> None:
    encoder = create_encoder("audio_tiny")
    steps_per_second = encoder.num_steps / encoder.audio_spec.seconds
    video_fps = create_encoder("video_tiny").video_spec.fps
    assert encoder.num_steps == 51
    assert abs(steps_per_second - video_fps) / video_fps < 0.1


def test_audio_tiny_on_waveforms_applies_the_shared_logmel() -> None:
    on_mel = create_encoder("audio_tiny").eval()
    on_wave = create_encoder("audio_tiny", representation="waveform").eval()
    missing, unexpected = on_wave.load_state_dict(on_mel.state_dict(), strict=False)
    assert unexpected == []
    assert all(k.startswith("frontend.") for k in missing)
    wave = on_wave.example_input(2)
    assert wave.shape == (2, on_wave.audio_spec.num_samples)
    with torch.no_grad():
        torch.testing.assert_close(on_wave(wave), on_mel(LogMel(on_mel.audio_spec)(wave)))
