"""The tiny towers can learn temporal alignment: with colour and pitch the same for every
clip, only tempo, beat phase and loudness contour tell clips apart."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from crossmodal.model import CrossModalModel, ModelConfig
from tests.encoders.beat_toy import beat_clips


def _recall_at(video_emb: torch.Tensor, audio_emb: torch.Tensor, k: int) -> tuple[float, float]:
    sim = video_emb @ audio_emb.T
    v2a = (sim > sim.diag()[:, None]).sum(1) + 1
    by_audio = sim.transpose(0, 1)
    a2v = (by_audio > by_audio.diag()[:, None]).sum(1) + 1
    return (v2a <= k).float().mean().item(), (a2v <= k).float().mean().item()


@pytest.mark.slow
def test_tiny_towers_learn_beat_locked_pairs_quickly() -> None:
    torch.manual_seed(0)
    # default towers and head; 16² frames instead of 48² only to keep the test short
    model = CrossModalModel.from_config(ModelConfig(video_overrides={"size": 16}))
    generator = torch.Generator().manual_seed(1)
    train_video, train_audio = beat_clips(256, model.video_spec, model.audio_spec, generator)
    test_video, test_audio = beat_clips(80, model.video_spec, model.audio_spec, generator)
    # the learnable temperature of InfoNCE (1/0.07 at the start, clamped at 100)
    log_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    optimizer = torch.optim.AdamW([*model.parameters(), log_scale], lr=2e-3)
    for _ in range(2):
        for idx in torch.randperm(256).split(32):
            video_emb, audio_emb = model(train_video[idx], train_audio[idx])
            logits = log_scale.clamp(max=math.log(100.0)).exp() * video_emb @ audio_emb.T
            target = torch.arange(len(idx))
            loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        video_emb, audio_emb = model(test_video, test_audio)
        v2a, a2v = _recall_at(video_emb, audio_emb, 5)
    # chance is 5/80 on 80 held-out pairs; measured 0.93 / 0.93
    assert v2a > 0.5, v2a
    assert a2v > 0.5, a2v
