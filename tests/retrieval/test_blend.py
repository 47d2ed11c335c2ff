"""The query-time blend of a two-part (sync + vibe) model: one index answers every α;
scores equal the blended score of a naive loop over the parts; models without a vibe
part ignore the knob with a note; the query's predicted mood is reported."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from crossmodal.apps.cli import main
from crossmodal.data import read_manifest
from crossmodal.data.synth.corpus import SynthConfig, generate_corpus
from crossmodal.model import CrossModalModel, ModelConfig
from crossmodal.retrieval.indexer import Indexer, library_files
from crossmodal.retrieval.recommender import Recommender

MOODS = ["calm", "happy", "sad", "tense"]
SYNC_OFFSET = 0.15


def _model(vibe_dim: int) -> CrossModalModel:
    torch.manual_seed(0)
    model = CrossModalModel.from_config(ModelConfig(embed_dim=16, vibe_dim=vibe_dim, blend=0.4))
    if vibe_dim:
        model.set_moods(MOODS, torch.randn(len(MOODS), vibe_dim))
    return model.eval()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    return generate_corpus(
        out, SynthConfig(clips=8, size=48, split=(0.5, 0.0, 0.5)), progress=False
    )


def _index(model: CrossModalModel, corpus: Path, out: Path) -> Path:
    Indexer(model, out).index({"music": library_files(corpus, "music")})
    return out


@torch.no_grad()
def _naive_scores(
    model: CrossModalModel, query: Path, corpus: Path, alpha: float, gate: float | None = None
) -> dict:
    """Blended score of every track from separately computed parts (one 4-s window each);
    with ``gate`` τ the sync part counts as max(0, sync − τ)/(1 − τ)."""
    from crossmodal.data import load_audio_windows, load_video_windows

    def parts(modality: str, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        features = model.backbone(modality, x)
        sync = model.heads[modality](features)[0].double().numpy()
        vibe = model.vibe_heads[modality](features)[0].double().numpy()
        return sync / np.linalg.norm(sync), vibe / np.linalg.norm(vibe)

    q_sync, q_vibe = parts("video", load_video_windows(query, model.video_spec, [0.0], 4.0))
    scores = {}
    for entry in library_files(corpus, "music"):
        g_sync, g_vibe = parts("music", load_audio_windows(entry.path, model.audio_spec, [0.0]))
        sync = sum(a * b for a, b in zip(q_sync, g_sync, strict=True))
        vibe = sum(a * b for a, b in zip(q_vibe, g_vibe, strict=True))
        if gate is not None:
            sync = max(0.0, sync - gate) / (1 - gate)
        scores[str(entry.path)] = (1 - alpha) * sync + alpha * vibe
    return scores


def test_every_blend_from_one_index_equals_the_naive_blended_score(
    corpus: Path, tmp_path: Path
) -> None:
    model = _model(8)
    index = _index(model, corpus, tmp_path / "index")
    query = read_manifest(corpus)[0].video
    rankings = {}
    for alpha in (0.0, 0.4, 0.7, 1.0):
        rec = Recommender.load(index, blend=alpha)
        matches = rec.recommend_music(query, k=8)
        rec.close()
        expected = _naive_scores(model, query, corpus, alpha)
        assert [m.path for m in matches] == sorted(expected, key=lambda p: -expected[p])
        np.testing.assert_allclose(
            [m.score for m in matches], [expected[m.path] for m in matches], atol=1e-4
        )
        rankings[alpha] = [m.path for m in matches]
    assert rankings[0.0] != rankings[1.0]  # sync and vibe really rank differently
    default = Recommender.load(index)  # the model's stored α₀ = 0.4
    assert default.default_blend == pytest.approx(0.4)
    assert [m.path for m in default.recommend_music(query, k=8)] == rankings[0.4]
    answer = default.query(query, "video", k=3)
    assert answer.mood in MOODS
    emb = default.embed_query(query, "video")
    assert answer.mood == model.predict_mood(torch.from_numpy(emb)[None])[0]
    default.close()


def test_a_model_without_a_vibe_part_ignores_the_blend_with_a_note(
    corpus: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys
) -> None:
    index = _index(_model(0), corpus, tmp_path / "index")
    query = read_manifest(corpus)[0].video
    plain = Recommender.load(index)
    expected = [(m.path, m.score) for m in plain.recommend_music(query, k=4)]
    plain.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="crossmodal"):
        rec = Recommender.load(index, blend=1.0)
    # Only the recommender's records: earlier steps (the index build) log at INFO.
    notes = [r.getMessage() for r in caplog.records if r.name.endswith(".recommender")]
    assert notes == [
        "note: this index's model has no vibe (mood) part: blend 1 ignored, ranking by sync"
    ]
    assert [(m.path, m.score) for m in rec.recommend_music(query, k=4)] == expected
    assert rec.query(query, "video", k=1).mood is None
    rec.close()


def test_cli_blend_prints_moods_and_refuses_values_outside_0_1(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = _index(_model(8), corpus, tmp_path / "index")
    query = str(read_manifest(corpus)[0].video)
    assert main(["-q", "recommend", query, "--index", str(index), "-k", "3", "--blend", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(query + "  (mood: ")
    assert lines[0].removeprefix(query + "  (mood: ").rstrip(")") in MOODS
    assert len(lines) == 4
    assert main(["-q", "recommend", query, "--index", str(index), "--json", "--blend", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["moods"][query] in MOODS
    with pytest.raises(SystemExit):
        main(["recommend", query, "--index", str(index), "--blend", "1.5"])
    assert "--blend" in capsys.readouterr().err


def test_a_gated_model_ranks_sure_matches_first_then_by_vibe_like_a_naive_loop(
    corpus: Path, tmp_path: Path
) -> None:
    model = _model(8)
    query = read_manifest(corpus)[0].video
    # A gate between the query's sync scores: some tracks above it, some below.
    sync = sorted(_naive_scores(model, query, corpus, 0.0).values())
    gate = 0.5 * (sync[-3] + sync[-4])
    model.set_sync_gate(gate)
    assert model.layout.gated
    index = _index(model, corpus, tmp_path / "index")
    for alpha in (None, 0.0, 0.3, 0.7):
        a = 0.4 if alpha is None else alpha
        # α 0 ranks by the plain sync similarity, gate or not.
        expected = _naive_scores(model, query, corpus, a, gate if a > 0 else None)
        order = sorted(expected, key=lambda p: -expected[p])
        rec = Recommender.load(index, blend=alpha)
        for k in (8, 2):  # the whole library, and a top-2 that must widen its searches
            matches = rec.recommend_music(query, k=k)
            assert [m.rank for m in matches] == list(range(1, k + 1))
            np.testing.assert_allclose(
                [m.score for m in matches], [expected[p] for p in order[:k]], atol=1e-4
            )
            assert [m.path for m in matches] == order[:k]
        rec.close()
    # The gate is stored with the model inside the index.
    rec = Recommender.load(index)
    assert rec.layout.gate == pytest.approx(gate)
    rec.close()


@pytest.fixture(scope="module")
def long_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 9-s clips: several 4-s windows per file, on both sides.
    out = tmp_path_factory.mktemp("long_corpus")
    return generate_corpus(
        out,
        SynthConfig(clips=6, size=48, duration=9.0, split=(0.5, 0.0, 0.5)),
        progress=False,
    )


def test_gated_search_over_many_window_files_matches_a_naive_loop(
    long_corpus: Path, tmp_path: Path
) -> None:
    # Multi-window query and items: the query's parts renormalised, each part's best
    # window per item, the gate raised for an item of W windows.
    from crossmodal.embedding_layout import EmbeddingLayout

    model = _model(8)
    with torch.no_grad():
        # A shared offset in both sync heads: positive sync similarities, as after
        # training, so that the raised W-window gate is exercised.
        offset = torch.nn.functional.normalize(torch.ones(16), dim=0) * SYNC_OFFSET
        for modality in ("video", "music"):
            model.heads[modality].proj.bias += offset
    probe = Indexer(model, tmp_path / "probe")
    query = read_manifest(long_corpus)[0].video
    emb = probe.embed_file(query, "video", min_seconds=0.5)
    mean = torch.nn.functional.normalize(torch.from_numpy(emb.vectors).mean(0), dim=0)
    q_sync, q_vibe = model.layout.split(mean.double())
    tracks = {}
    for entry in library_files(long_corpus, "music"):
        embedded = probe.embed_file(entry.path, "music")
        w_sync, w_vibe = model.layout.split(torch.from_numpy(embedded.vectors).double())
        windows = max(1, int(embedded.duration // probe.window))
        assert len(embedded.vectors) > 1
        tracks[str(entry.path)] = (
            float((w_sync @ q_sync).max()),
            float((w_vibe @ q_vibe).max()),
            windows,
        )
    # A gate whose W-window value sits between the best and 2nd best sync: one sure match.
    (w,) = {t[2] for t in tracks.values()}
    assert w >= 2
    best = sorted((t[0] for t in tracks.values()), reverse=True)
    # Calibrated at the 0.99 quantile, the gate is raised from two windows on (at 0.998
    # only past about five), so these few-window files exercise it.
    unit = EmbeddingLayout(16, 8, 0.4, gate=0.5, gate_quantile=0.99)
    tau = 0.5 * (best[0] + best[1]) * 0.5 / unit.gate_for_windows(w)
    model.set_sync_gate(tau, quantile=0.99)
    gate_w = model.layout.gate_for_windows(w)
    assert best[1] < gate_w < best[0]
    assert gate_w > tau
    index = tmp_path / "index"
    Indexer(model, index).index({"music": library_files(long_corpus, "music")})
    for alpha in (0.3, 0.7):
        expected = {
            path: (1 - alpha) * max(0.0, s - gate_w) / (1 - gate_w) + alpha * v
            for path, (s, v, _) in tracks.items()
        }
        order = sorted(expected, key=lambda p: -expected[p])
        rec = Recommender.load(index, blend=alpha)
        for k in (len(tracks), 1):
            matches = rec.recommend_music(query, k=k)
            assert [m.path for m in matches] == order[:k]
            np.testing.assert_allclose(
                [m.score for m in matches], [expected[p] for p in order[:k]], atol=1e-4
            )
        rec.close()


def test_part_queries_score_cosines_even_for_a_mean_of_windows(
    corpus: Path, tmp_path: Path
) -> None:
    # A query that is a mean of windows has parts shorter than 1; the part queries are
    # built from its renormalised parts, so a part score is a cosine.
    model = _model(8)
    index = _index(model, corpus, tmp_path / "index")
    rec = Recommender.load(index)
    layout = rec.layout
    gen = torch.Generator().manual_seed(3)
    sync = torch.nn.functional.normalize(torch.randn(2, 16, generator=gen), dim=1)
    vibe = torch.nn.functional.normalize(torch.randn(2, 8, generator=gen), dim=1)
    stored = layout.combine(sync, vibe)
    query = torch.nn.functional.normalize(layout.combine(sync[:1] * 0.5, vibe[:1]), dim=1)[0]
    for blend, expected in ((0.0, sync[0] @ sync[1]), (1.0, vibe[0] @ vibe[1])):
        weighted, _ = rec._part_query(query.numpy(), blend)
        assert float(torch.from_numpy(weighted) @ stored[1]) == pytest.approx(
            float(expected), abs=1e-5
        )
    rec.close()
