"""The two-level objective: sync terms on the sync part, mood terms on the vibe part of
a two-part embedding, against naive references written from the formulas (float64)."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from torch.nn import functional as F

from crossmodal.embedding_layout import EmbeddingLayout
from crossmodal.errors import CrossmodalError
from crossmodal.training.config import LossTerm, TrainConfig
from crossmodal.training.objective import OnPart, build_objective, keys_of, mood_prototypes

LAYOUT = EmbeddingLayout(6, 4, 0.4)


def _naive_cut(emb: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    rows = []
    for row in emb:
        part = row[start:stop]
        norm = math.sqrt(sum(float(x) ** 2 for x in part))
        rows.append(part / norm)
    return torch.stack(rows)


def _naive_normface(emb: torch.Tensor, labels: torch.Tensor, proxies: torch.Tensor, scale: float):
    total = 0.0
    for i in range(len(emb)):
        x = emb[i] / emb[i].norm()
        logits = [scale * float(x @ (w / w.norm())) for w in proxies]
        top = max(logits)
        log_z = top + math.log(sum(math.exp(v - top) for v in logits))
        total += log_z - logits[int(labels[i])]
    return total / len(emb)


def _batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    video = F.normalize(torch.randn(10, LAYOUT.dim, generator=gen, dtype=torch.float64), dim=1)
    music = F.normalize(torch.randn(10, LAYOUT.dim, generator=gen, dtype=torch.float64), dim=1)
    tracks = torch.arange(10) // 2
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 0, 1, 1])
    return video, music, tracks, labels


def test_default_objective_trains_sync_terms_on_sync_and_the_mood_term_on_vibe() -> None:
    video, music, tracks, labels = _batch()
    objective = build_objective(TrainConfig(), {"track": 5, "label": 3}, LAYOUT, True).double()
    assert list(objective.terms) == ["info_nce", "npair", "normface_label"]
    assert all(isinstance(t, OnPart) for t in objective.terms.values())
    assert [t.part for t in objective.terms.values()] == ["sync", "sync", "vibe"]
    keys = keys_of(tracks, labels)
    value = objective(video, keys, music, keys)

    # The sync terms: the instance-only objective on naively cut sync parts.
    instance = TrainConfig(losses=[LossTerm("info_nce"), LossTerm("npair")])
    sync_objective = build_objective(instance, {"track": 5, "label": 3}, 6, True).double()
    v_sync, m_sync = _naive_cut(video, 0, 6), _naive_cut(music, 0, 6)
    sync_value = sync_objective(v_sync, keys, m_sync, keys)
    # The mood term: symmetric NormFace on the vibe parts, shared proxies, at NormFace's
    # bound for 3 classes (C − 1)/C · ln((C − 1)·0.99/0.01), written out here.
    scale = 2 / 3 * math.log(2 * 0.99 / 0.01)
    proxies = mood_prototypes(objective, 3).double()
    assert proxies.shape == (3, 4)
    v_vibe, m_vibe = _naive_cut(video, 6, 10), _naive_cut(music, 6, 10)
    mood_value = 0.5 * (
        _naive_normface(v_vibe, labels, proxies, scale)
        + _naive_normface(m_vibe, labels, proxies, scale)
    )
    torch.testing.assert_close(objective.last_terms["normface_label"].item(), mood_value)
    torch.testing.assert_close(value, sync_value + mood_value, rtol=1e-10, atol=1e-10)


def test_the_vibe_term_sees_only_the_vibe_part_and_has_correct_gradients() -> None:
    video, music, tracks, labels = _batch(1)
    cfg = TrainConfig(losses=[LossTerm("normface", key="label")])
    objective = build_objective(cfg, {"track": 5, "label": 3}, LAYOUT, True).double()
    keys = keys_of(tracks, labels)
    video = video.clone().requires_grad_(True)
    objective(video, keys, music, keys).backward()
    assert torch.count_nonzero(video.grad[:, :6]) == 0  # the sync part gets nothing
    assert torch.count_nonzero(video.grad[:, 6:]) > 0
    term = objective.terms["normface_label"]
    assert torch.autograd.gradcheck(
        lambda v, m: term(v, labels, m, labels), (video.detach().requires_grad_(), music)
    )


def test_unlabelled_corpora_train_the_instance_level_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="crossmodal.training.objective"):
        objective = build_objective(TrainConfig(), {"track": 5, "label": 0}, LAYOUT, False)
    assert list(objective.terms) == ["info_nce", "npair"]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert (
        "no label: training the instance level only (mood terms normface left out, no vibe part)"
        in lines[0]
    )
    # A mood term the user listed is an error, not silently dropped.
    cfg = TrainConfig(losses=[LossTerm("info_nce"), LossTerm("normface", key="label")])
    with pytest.raises(CrossmodalError, match="some training clips have no label"):
        build_objective(cfg, {"track": 5, "label": 0}, LAYOUT, False)


def test_one_part_models_keep_every_term_on_the_whole_embedding() -> None:
    objective = build_objective(TrainConfig(), {"track": 5, "label": 3}, 10, True)
    assert not any(isinstance(t, OnPart) for t in objective.terms.values())
    assert mood_prototypes(objective, 3) is None  # no vibe part: no mood centres


def test_a_term_can_name_the_part_it_trains() -> None:
    # part: vibe puts an instance (track) term on the vibe part; part: whole on the emitted
    # vector. Each equals the same loss on the naively cut (or uncut) embeddings.
    video, music, tracks, labels = _batch(2)
    keys = keys_of(tracks, labels)
    cfg = TrainConfig(
        losses=[LossTerm("info_nce", part="vibe"), LossTerm("info_nce", part="whole")]
    )
    objective = build_objective(cfg, {"track": 5, "label": 3}, LAYOUT, True).double()
    assert list(objective.terms) == ["info_nce", "info_nce_2"]
    assert objective.terms["info_nce"].part == "vibe"
    assert not isinstance(objective.terms["info_nce_2"], OnPart)
    objective(video, keys, music, keys)
    plain = build_objective(
        TrainConfig(losses=[LossTerm("info_nce")]), {"track": 5, "label": 3}, 4, True
    ).double()
    on_vibe = plain(_naive_cut(video, 6, 10), keys, _naive_cut(music, 6, 10), keys)
    torch.testing.assert_close(objective.last_terms["info_nce"], on_vibe)
    whole = build_objective(
        TrainConfig(losses=[LossTerm("info_nce")]), {"track": 5, "label": 3}, 10, True
    ).double()
    torch.testing.assert_close(objective.last_terms["info_nce_2"], whole(video, keys, music, keys))


def test_a_part_outside_the_choices_is_a_config_error() -> None:
    from crossmodal.config import ConfigError

    with pytest.raises(ConfigError, match="part must be auto, sync, vibe or whole"):
        LossTerm("info_nce", part="both")
