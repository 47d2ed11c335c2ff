"""Item stage: exact re-rank of candidate items equals brute force; tuned recall holds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from crossmodal.retrieval import IndexParams, IndexStore
from crossmodal.retrieval.item_index import ItemIndex

DIM = 24


def _library(seed: int = 0) -> list[np.ndarray]:
    """150 tracks of 1-30 windows around item centres (topics → items → windows),
    plus one 'hog' with 200 near-identical windows that would crowd a window search."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((6, DIM))
    items = []
    for _ in range(150):
        centre = topics[rng.integers(6)] + 0.8 * rng.standard_normal(DIM)
        w = centre + 0.6 * rng.standard_normal((int(rng.integers(1, 31)), DIM))
        items.append(w)
    items.append(topics[0] + 0.05 * rng.standard_normal((200, DIM)))
    return [(w / np.linalg.norm(w, axis=1, keepdims=True)).astype(np.float32) for w in items]


def _naive(items: list[np.ndarray], query: np.ndarray, k: int) -> list[tuple[int, float, int]]:
    """(item, best score, best window) of the k best items: a loop in float64."""
    q = query.astype(np.float64) / np.linalg.norm(query)
    best = []
    for i, w in enumerate(items):
        sims = w.astype(np.float64) @ q
        best.append((i, float(sims.max()), int(np.argmax(sims))))
    return sorted(best, key=lambda t: -t[1])[:k]


def _store(root: Path, items: list[np.ndarray], meta: Callable, **params: object) -> IndexStore:
    store = IndexStore(root)
    policy = IndexParams(**{"kind": "flat", "item_stage_min": 1, **params})  # type: ignore[arg-type]
    with store.begin_update("model-A", DIM, params=policy) as update:
        for i, w in enumerate(items):
            windows = [(float(j), j + 2.0) for j in range(len(w))]
            update.add_item("music", f"lib/t{i:03d}.wav", meta(), windows, w)
    return IndexStore.open(root, fingerprint="model-A")


def _path_index(path: str) -> int:
    return int(Path(path).stem[1:])


def test_item_stage_with_every_item_as_candidate_equals_brute_force(
    tmp_path: Path, meta: Callable
) -> None:
    items = _library()
    store = _store(tmp_path / "index", items, meta)
    stage = store.snapshot._item_stages["music"]
    stage.info = replace(stage.info, candidates_per_k=1e9)  # every item: exact by construction
    rng = np.random.default_rng(3)
    queries = np.vstack([rng.standard_normal((25, DIM)), items[-1][:2].mean(axis=0)])
    for k in (1, 5, 20, 151, 500):
        for query, hits in zip(queries, store.search("music", queries, k=k), strict=True):
            ref = _naive(items, query, k)
            assert [_path_index(h.item.path) for h in hits] == [r[0] for r in ref]
            np.testing.assert_allclose([h.score for h in hits], [r[1] for r in ref], atol=1e-5)
            assert [h.start for h in hits] == [float(r[2]) for r in ref]


def test_tuned_item_stage_meets_the_target_on_fresh_queries(tmp_path: Path, meta: Callable) -> None:
    items = _library(seed=1)
    rng = np.random.default_rng(5)
    picked = rng.integers(len(items) - 1, size=150)
    queries = np.stack([items[i].mean(axis=0) for i in picked])
    queries += 0.6 * rng.standard_normal(queries.shape) / np.sqrt(DIM)
    k = 10
    exact = [{r[0] for r in _naive(items, q, k)} for q in queries]
    chosen = {}
    for target in (0.6, 0.99):
        store = _store(tmp_path / f"t{target}", items, meta, recall_target=target)
        info = store.snapshot._item_stages["music"].info
        assert info.measured_recall is not None
        assert info.measured_recall >= target
        found = store.search("music", queries, k=k)
        recall = np.mean(
            [
                len({_path_index(h.item.path) for h in hits} & ref) / k
                for hits, ref in zip(found, exact, strict=True)
            ]
        )
        assert recall >= target - 0.03, (recall, info)
        chosen[target] = info.candidates_per_k
    # A higher target buys its recall with more candidate items.
    assert chosen[0.99] > chosen[0.6]


def test_small_indexes_have_no_item_stage(tmp_path: Path, meta: Callable) -> None:
    items = _library()[:20]
    store = IndexStore(tmp_path / "index")
    with store.begin_update("model-A", DIM) as update:  # default item_stage_min: 50k windows
        for i, w in enumerate(items):
            windows = [(float(j), j + 1.0) for j in range(len(w))]
            update.add_item("music", f"lib/t{i:03d}.wav", meta(), windows, w)
    assert not ItemIndex.exists(tmp_path / "index" / "versions" / store.current_version() / "music")


def test_item_stage_over_an_hnsw_index_skips_removed_items(tmp_path: Path, meta: Callable) -> None:
    items = _library(seed=2)
    root = tmp_path / "index"
    _store(root, items, meta, kind="hnsw", hnsw_m=8)
    with IndexStore(root).begin_update("model-A", DIM) as update:
        update.remove_item("lib/t003.wav")  # HNSW keeps it as a tombstone
    store = IndexStore.open(root)
    assert store.snapshot.index("music").num_tombstones > 0
    stage = store.snapshot._item_stages["music"]
    stage.info = replace(stage.info, candidates_per_k=1e9)
    kept = [w if i != 3 else w[:0] for i, w in enumerate(items)]
    query = items[3].mean(axis=0)  # right on the removed track
    hits = store.search("music", query, k=5)[0]
    ref = _naive([w for w in kept if len(w)], query, 5)
    names = [i for i, w in enumerate(kept) if len(w)]
    assert [_path_index(h.item.path) for h in hits] == [names[r[0]] for r in ref]
