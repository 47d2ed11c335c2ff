from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from crossmodal.retrieval import IndexParams, IndexStore, InvalidVectorsError

DIM = 24


def _library(
    clustered: Callable, seed: int = 0
) -> list[tuple[str, list[tuple[float, float]], np.ndarray]]:
    """Items with 1-40 windows, plus one item with 300 windows packed around one point."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(60):
        n = int(rng.integers(1, 41))
        windows = [(2.0 * w, 2.0 * w + 3.0) for w in range(n)]
        items.append((f"lib/track{i:03d}.wav", windows, clustered(n, DIM, seed=seed * 1000 + i)))
    hog_centre = clustered(1, DIM, seed=777)[0]
    hog = hog_centre + 0.05 * rng.standard_normal((300, DIM))
    items.append(("lib/hog.wav", [(float(w), w + 1.0) for w in range(300)], hog.astype(np.float32)))
    return items


def _reference(
    items: list, queries: np.ndarray, k: int
) -> list[list[tuple[str, float, float, float]]]:
    """Naive per-item search: each item scored by the max cosine over its windows."""
    out = []
    for q in queries:
        q = q / np.linalg.norm(q)
        best = []
        for path, windows, vectors in items:
            v = vectors.astype(np.float64)
            sims = v @ q / np.linalg.norm(v, axis=1)
            w = int(np.argmax(sims))
            best.append((path, float(sims[w]), windows[w][0], windows[w][1]))
        out.append(sorted(best, key=lambda t: -t[1])[:k])
    return out


@pytest.fixture
def library_store(tmp_path: Path, clustered: Callable, meta: Callable) -> tuple[IndexStore, list]:
    items = _library(clustered)
    store = IndexStore(tmp_path / "index")
    with store.begin_update("model-A", DIM) as update:
        for path, windows, vectors in items:
            update.add_item("music", path, meta(), windows, vectors)
    return IndexStore.open(tmp_path / "index", fingerprint="model-A"), items


def test_per_item_search_matches_a_naive_max_over_windows(
    library_store: tuple, clustered: Callable
) -> None:
    store, items = library_store
    assert store.info().index_kinds == {"music": "flat", "video": "flat"}
    hog_query = items[-1][2][:3].mean(axis=0)  # right on the 300-window item
    queries = np.vstack([clustered(20, DIM, seed=5), hog_query])
    for k in (1, 5, 30, 61, 100):
        results = store.search("music", queries, k=k)
        expected = _reference(items, queries, k)
        assert len(results) == len(queries)
        for hits, ref in zip(results, expected, strict=True):
            assert [h.item.path for h in hits] == [r[0] for r in ref]
            np.testing.assert_allclose([h.score for h in hits], [r[1] for r in ref], atol=1e-5)
            assert [(h.start, h.end) for h in hits] == [(r[2], r[3]) for r in ref]
    top = store.search("music", hog_query, k=3)[0]
    assert top[0].item.path == "lib/hog.wav"
    assert len({h.item.item_id for h in top}) == 3


def test_window_search_matches_brute_force(
    library_store: tuple, clustered: Callable, exact_search: Callable
) -> None:
    store, items = library_store
    vectors = np.vstack([v for _, _, v in items])
    window_of = [(path, w) for path, windows, _ in items for w in windows]
    queries = clustered(10, DIM, seed=9)
    ref_scores, ref_rows = exact_search(vectors, np.arange(len(vectors)), queries, 15)
    results = store.search("music", queries, k=15, per_item=False)
    for hits, scores, rows in zip(results, ref_scores, ref_rows, strict=True):
        assert [(h.item.path, (h.start, h.end)) for h in hits] == [window_of[r] for r in rows]
        np.testing.assert_allclose([h.score for h in hits], scores, atol=1e-5)
    scores, vids = store.snapshot.search_vectors("music", queries, 15)
    assert [[h.vector_id for h in hits] for hits in results] == vids.tolist()
    windows = store.snapshot.catalog.windows_for(vids[0])
    assert [(w.start, w.end) for w in windows] == [(h.start, h.end) for h in results[0]]


def test_hnsw_store_finds_most_items(tmp_path: Path, clustered: Callable, meta: Callable) -> None:
    items = _library(clustered, seed=1)
    params = IndexParams(kind="hnsw", hnsw_m=16, hnsw_ef_search=64)
    with IndexStore(tmp_path / "i").begin_update("m", DIM, params=params) as update:
        for path, windows, vectors in items:
            update.add_item("music", path, meta(), windows, vectors)
    store = IndexStore.open(tmp_path / "i")
    assert store.info().index_kinds["music"] == "hnsw"
    queries = clustered(20, DIM, seed=5)
    found = [{h.item.path for h in hits} for hits in store.search("music", queries, k=10)]
    expected = [{r[0] for r in ref} for ref in _reference(items, queries, 10)]
    recall = np.mean([len(f & e) / 10 for f, e in zip(found, expected, strict=True)])
    assert recall >= 0.9


def test_empty_modality_and_bad_queries(library_store: tuple) -> None:
    store, _ = library_store
    assert store.search("video", np.ones((2, DIM)), k=5) == [[], []]
    assert store.search("video", np.ones(DIM), k=5, per_item=False) == [[]]
    with pytest.raises(InvalidVectorsError, match=r"expected shape \(N, 24\)"):
        store.search("music", np.ones(DIM + 1), k=5)
    with pytest.raises(InvalidVectorsError, match="NaN or inf"):
        store.search("music", np.full(DIM, np.nan), k=5)
    with pytest.raises(ValueError, match="modality"):
        store.search("speech", np.ones(DIM), k=5)
    with pytest.raises(ValueError, match="k must be"):
        store.search("music", np.ones(DIM), k=0)


def test_reader_limited_to_one_modality(library_store: tuple, tmp_path: Path) -> None:
    store = IndexStore.open(tmp_path / "index", modalities=("music",))
    assert len(store.search("music", np.ones(DIM), k=2)[0]) == 2
    with pytest.raises(ValueError, match="without the video index"):
        store.search("video", np.ones(DIM), k=2)


def test_preloaded_items_answer_without_the_catalog(library_store: tuple) -> None:
    store, items = library_store
    snap = store.snapshot
    assert snap.preload_items() == len(items)
    snap.catalog.close()  # every answer now comes from the cache
    hits = store.search("music", items[0][2][0], k=3)[0]
    assert hits[0].item.path == items[0][0]
