from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from crossmodal.retrieval import (
    IndexParams,
    InvalidVectorsError,
    StoreCorruptError,
    StoreError,
    TooFewVectorsError,
    VectorIndex,
    choose_kind,
)

DIM = 32
# Small graph/list sizes so that the approximate kinds build in well under a second.
SMALL = IndexParams(
    hnsw_m=16, hnsw_ef_construction=40, hnsw_ef_search=64, ivf_nlist=16, pq_m=8, pq_nbits=6
)


def _ids(n: int) -> np.ndarray:
    # Sparse, unordered ids: the index must return the caller's ids, not positions.
    return (np.arange(n, dtype=np.int64) * 7 + 1000)[::-1].copy()


def test_flat_search_is_exact(clustered: Callable, exact_search: Callable) -> None:
    db = clustered(1500, DIM)
    ids = _ids(len(db))
    index = VectorIndex.build(db, ids, SMALL.with_kind("flat"))
    queries = clustered(25, DIM, seed=1)
    scores, found = index.search(queries, 10)
    ref_scores, ref_ids = exact_search(db, ids, queries, 10)
    assert scores.shape == found.shape == (25, 10)
    assert scores.dtype == np.float32
    assert found.dtype == np.int64
    np.testing.assert_array_equal(found, ref_ids)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    # A single (D,) query is one row with the same answer.
    one_scores, one_ids = index.search(queries[3], 10)
    np.testing.assert_array_equal(one_ids[0], ref_ids[3])
    np.testing.assert_allclose(one_scores[0], ref_scores[3], atol=1e-5)


@pytest.mark.parametrize(("kind", "min_recall"), [("hnsw", 0.85), ("ivfpq", 0.5)])
def test_approximate_kinds_recall_on_clustered_data(
    kind: str, min_recall: float, clustered: Callable, exact_search: Callable, recall: Callable
) -> None:
    db = clustered(3000, DIM)
    ids = _ids(len(db))
    index = VectorIndex.build(db, ids, SMALL.with_kind(kind))
    assert index.kind == kind
    assert len(index) == 3000
    queries = clustered(50, DIM, seed=1)
    _, found = index.search(queries, 10)
    _, exact = exact_search(db, ids, queries, 10)
    assert set(found[found >= 0].tolist()) <= set(ids.tolist())
    assert recall(found, exact) >= min_recall


def test_search_knobs_reach_faiss(
    clustered: Callable, exact_search: Callable, recall: Callable
) -> None:
    db = clustered(3000, DIM, clusters=60)
    ids = _ids(len(db))
    queries = clustered(60, DIM, clusters=60, seed=1)
    _, exact = exact_search(db, ids, queries, 10)
    ivf = VectorIndex.build(db, ids, SMALL.with_kind("ivfpq"))
    narrow, wide = (recall(ivf.search(queries, 10, nprobe=n)[1], exact) for n in (1, 16))
    assert wide > narrow
    hnsw = VectorIndex.build(db, ids, replace(SMALL, kind="hnsw", hnsw_m=4))
    low, high = (recall(hnsw.search(queries, 10, ef_search=ef)[1], exact) for ef in (10, 200))
    assert high > low


def test_k_larger_than_index_and_empty_index() -> None:
    index = VectorIndex.empty(4)
    scores, ids = index.search(np.ones((3, 4)), 5)
    assert scores.shape == ids.shape == (3, 0)
    index.add(np.eye(4)[:2], [10, 11])
    scores, ids = index.search(np.array([1.0, 0, 0, 0]), 5)
    assert ids.tolist() == [[10, 11]]
    np.testing.assert_allclose(scores, [[1.0, 0.0]], atol=1e-6)
    with pytest.raises(ValueError, match="k must be"):
        index.search(np.ones(4), 0)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_remove_is_never_returned_again(
    kind: str, clustered: Callable, exact_search: Callable, recall: Callable
) -> None:
    db = clustered(2500, DIM)
    ids = _ids(len(db))
    index = VectorIndex.build(db, ids, SMALL.with_kind(kind))
    gone = ids[::3]
    assert index.remove(np.concatenate([gone, [123456789]])) == len(gone)
    assert index.remove(gone) == 0
    keep = ~np.isin(ids, gone)
    assert len(index) == keep.sum()
    np.testing.assert_array_equal(index.ids(), np.sort(ids[keep]))
    queries = db[::3][:40]  # queries sit exactly on removed vectors
    _, found = index.search(queries, 10)
    assert not np.isin(found, gone).any()
    _, exact = exact_search(db[keep], ids[keep], queries, 10)
    if kind == "flat":
        np.testing.assert_array_equal(found, exact)
    else:
        assert recall(found, exact) >= (0.85 if kind == "hnsw" else 0.45)
    assert index.num_tombstones == (len(gone) if kind == "hnsw" else 0)


def test_hnsw_compaction_rebuilds_without_tombstones(clustered: Callable) -> None:
    db = clustered(1000, DIM)
    ids = _ids(len(db))
    index = VectorIndex.build(db, ids, SMALL.with_kind("hnsw"))
    index.remove(ids[:50])
    assert not index.needs_compaction()  # 5 % < 10 %
    index.remove(ids[50:150])
    assert index.needs_compaction()
    compact = index.rebuilt()
    assert compact.kind == "hnsw"
    assert compact.num_tombstones == 0
    assert compact.ntotal == 850
    np.testing.assert_array_equal(compact.ids(), index.ids())
    live_ids, rows = compact.vectors()
    order = np.argsort(ids)
    expected = db[order][np.isin(ids[order], live_ids)]
    np.testing.assert_allclose(rows, expected, atol=1e-6)


def test_ids_cannot_be_reused(clustered: Callable) -> None:
    db = clustered(100, DIM)
    index = VectorIndex.build(db, np.arange(100), SMALL.with_kind("hnsw"))
    with pytest.raises(ValueError, match="already used"):
        index.add(db[:1], [5])
    index.remove([7])
    with pytest.raises(ValueError, match="already used"):
        index.add(db[:1], [7])  # a tombstoned id would alias the dead vector
    with pytest.raises(ValueError, match="unique"):
        index.add(db[:2], [500, 500])


def test_bad_vectors_are_refused(clustered: Callable) -> None:
    index = VectorIndex.empty(DIM)
    bad = clustered(3, DIM).astype(np.float64)
    bad[1, 0] = np.nan
    with pytest.raises(InvalidVectorsError, match="row 1"):
        index.add(bad, [1, 2, 3])
    with pytest.raises(InvalidVectorsError, match="expected shape"):
        index.add(np.ones((2, DIM + 1)), [1, 2])
    with pytest.raises(InvalidVectorsError, match="query vectors"):
        index.search(np.full(DIM, np.inf), 3)
    assert len(index) == 0


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_save_load_round_trip(kind: str, tmp_path: Path, clustered: Callable) -> None:
    db = clustered(2500, DIM)
    ids = _ids(len(db))
    index = VectorIndex.build(db, ids, SMALL.with_kind(kind))
    index.remove(ids[:10])
    written = index.save(tmp_path / "music")
    assert "music.faiss" in written
    assert "music.index.json" in written
    loaded = VectorIndex.load(tmp_path / "music")
    assert (loaded.kind, loaded.dim, len(loaded), loaded.num_tombstones) == (
        kind,
        DIM,
        len(index),
        index.num_tombstones,
    )
    queries = clustered(10, DIM, seed=3)
    for a, b in zip(index.search(queries, 7), loaded.search(queries, 7), strict=True):
        np.testing.assert_array_equal(a, b)


def test_damaged_files_raise_store_corrupt(tmp_path: Path, clustered: Callable) -> None:
    VectorIndex.build(clustered(50, DIM), np.arange(50)).save(tmp_path / "video")
    data = (tmp_path / "video.faiss").read_bytes()
    (tmp_path / "video.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreCorruptError, match=r"cannot read faiss index .*video\.faiss"):
        VectorIndex.load(tmp_path / "video")
    (tmp_path / "video.index.json").write_text("{not json")
    with pytest.raises(StoreCorruptError, match="index header"):
        VectorIndex.load(tmp_path / "video")


def test_kind_choice_by_size() -> None:
    params = IndexParams(flat_max=1000)
    assert choose_kind(params, 999) == "flat"
    assert choose_kind(params, 1000) == "hnsw"
    ivf = IndexParams(flat_max=1000, large_kind="ivfpq")
    assert choose_kind(ivf, 5000) == "flat"  # too few to train: auto falls back
    assert choose_kind(ivf, 20000) == "ivfpq"
    with pytest.raises(TooFewVectorsError, match="cannot train an ivfpq index on 500 vectors"):
        choose_kind(IndexParams(kind="ivfpq"), 500)
    with pytest.raises(TooFewVectorsError):
        VectorIndex.build(np.eye(8), np.arange(8), IndexParams(kind="ivfpq"))
    assert VectorIndex.build(np.eye(8), np.arange(8), IndexParams()).kind == "flat"


def test_defaults_follow_the_size_rules() -> None:
    params = IndexParams()
    assert params.nlist_for(100_000) == 256
    assert params.nlist_for(1_000_000) == 1024
    assert params.pq_m_for(256) == 32
    assert params.pq_m_for(100) == 10
    assert IndexParams.from_dict({**params.to_dict(), "from_the_future": 1}) == params
    with pytest.raises(ValueError, match="index kind"):
        IndexParams(kind="lsh")


def test_ivfpq_vectors_cannot_be_recovered(clustered: Callable) -> None:
    index = VectorIndex.build(clustered(2500, DIM), np.arange(2500), SMALL.with_kind("ivfpq"))
    with pytest.raises(StoreError, match="compressed codes"):
        index.vectors()
