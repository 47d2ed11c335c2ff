from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from crossmodal.retrieval import (
    IncompatibleStoreError,
    IndexParams,
    IndexStore,
    InvalidVectorsError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreNotFoundError,
    StoreUpdater,
    TooFewVectorsError,
)

DIM = 16
FP = "model-A"


def _vec(seed: int, n: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def _paths(store: IndexStore, modality: str = "music") -> list[str]:
    return sorted(item.path for item in store.snapshot.items(modality))


def _versions(root: Path) -> list[str]:
    return sorted(os.listdir(root / "versions"))


def _fill(root: Path, meta: Callable, names: list[str], **kw: object) -> None:
    with IndexStore(root).begin_update(FP, DIM, **kw) as update:  # type: ignore[arg-type]
        for i, name in enumerate(names):
            update.add_item("music", name, meta(), [(0.0, 2.0), (2.0, 4.0)], _vec(i, 2))


def _add_five_window_items(
    update: StoreUpdater, meta: Callable, vectors: np.ndarray, ids: range
) -> None:
    """Items ``{i}.wav`` of five 1-s windows each, with rows ``5i … 5i+4`` of ``vectors``."""
    for i in ids:
        windows = [(w, w + 1.0) for w in range(5)]
        update.add_item("music", f"{i}.wav", meta(), windows, vectors[5 * i : 5 * i + 5])


def test_incremental_add_change_remove(tmp_path: Path, meta: Callable) -> None:
    root = tmp_path / "index"
    _fill(root, meta, ["a.wav", "b.wav", "c.wav"])
    first = IndexStore.open(root)
    ids = {i.path: i.item_id for i in first.snapshot.items()}
    with IndexStore(root).begin_update(FP, DIM) as update:
        assert not update.needs_embedding("a.wav", 1000, 1.5e9, "sha256:00")
        assert update.needs_embedding("b.wav", 1000, 1.5e9, "sha256:changed")
        assert update.needs_embedding("new.wav", 1, 1.0, "sha256:xx")
        changed = update.add_item(
            "music", "b.wav", meta(checksum="sha256:changed"), [(5.0, 9.0)], _vec(50)
        )
        update.add_item("music", "d.wav", meta(), [(0.0, 1.0)], _vec(60))
        update.add_item("video", "v.mp4", meta(), [(0.0, 1.0)], _vec(70))
        assert [i.path for i in update.remove_item("c.wav")] == ["c.wav"]
        assert update.remove_item("never-indexed.wav") == []
        assert not update.needs_embedding("b.wav", 1000, 1.5e9, "sha256:changed", modality="music")
    store = IndexStore.open(root)
    assert _paths(store) == ["a.wav", "b.wav", "d.wav"]
    assert _paths(store, "video") == ["v.mp4"]
    items = {i.path: i for i in store.snapshot.items()}
    assert items["a.wav"].item_id == ids["a.wav"]  # unchanged files keep their id
    assert items["b.wav"].item_id == changed.item_id != ids["b.wav"]
    # The changed file answers with its new vector and window, the old vectors are gone.
    [hit] = store.search("music", _vec(50), k=1)[0]
    assert (hit.item.path, hit.start, hit.end) == ("b.wav", 5.0, 9.0)
    assert hit.score == pytest.approx(1.0, abs=1e-5)
    old_hits = store.search("music", _vec(1, 2), k=3, per_item=False)
    assert all(h.item.path != "b.wav" or h.start == 5.0 for hits in old_hits for h in hits)
    assert store.info().windows == {"music": 4, "video": 1}
    assert store.info().items == {"music": 3, "video": 1}
    # remove_missing drops what is no longer in the library, per modality.
    with IndexStore(root).begin_update(FP, DIM) as update:
        removed = update.remove_missing(["a.wav", "./d.wav", "v.mp4"], modality="music")
        assert [i.path for i in removed] == ["b.wav"]
    store.refresh()
    assert _paths(store) == ["a.wav", "d.wav"]
    assert _paths(store, "video") == ["v.mp4"]


def test_item_added_and_removed_in_one_update(tmp_path: Path, meta: Callable) -> None:
    root = tmp_path / "index"
    with IndexStore(root).begin_update(FP, DIM) as update:
        update.add_item("music", "x.wav", meta(), [(0.0, 1.0)], _vec(1))
        update.add_item("music", "x.wav", meta(size=5), [(0.0, 1.0)], _vec(2))  # re-added: replaced
        update.add_item("music", "y.wav", meta(), [(0.0, 1.0)], _vec(3))
        update.remove_item("y.wav")
    store = IndexStore.open(root)
    assert _paths(store) == ["x.wav"]
    assert store.info().windows["music"] == 1
    assert store.search("music", _vec(2), k=5)[0][0].score == pytest.approx(1.0, abs=1e-5)


def test_versions_are_published_and_old_ones_cleaned(tmp_path: Path, meta: Callable) -> None:
    root = tmp_path / "index"
    for n in range(1, 5):
        _fill(root, meta, [f"{n}.wav"])
    assert _versions(root) == ["000003", "000004"]
    pointer = json.loads((root / "CURRENT").read_text())
    assert (pointer["version"], pointer["previous"], pointer["format"]) == ("000004", "000003", 1)
    # An untouched modality is shared with the previous version through hard links.
    assert (
        os.stat(root / "versions/000003/video.faiss").st_ino
        == os.stat(root / "versions/000004/video.faiss").st_ino
    )
    assert (
        os.stat(root / "versions/000003/music.faiss").st_ino
        != os.stat(root / "versions/000004/music.faiss").st_ino
    )
    assert _paths(IndexStore.open(root)) == ["1.wav", "2.wav", "3.wav", "4.wav"]


def test_open_reader_survives_deletion_of_its_version(tmp_path: Path, meta: Callable) -> None:
    root = tmp_path / "index"
    _fill(root, meta, ["a.wav"])
    reader = IndexStore.open(root)
    _fill(root, meta, ["b.wav"])
    _fill(root, meta, ["c.wav"])
    assert "000001" not in _versions(root)
    assert reader.snapshot.version == "000001"
    assert [h.item.path for h in reader.search("music", _vec(0, 2)[0], k=5)[0]] == ["a.wav"]
    assert reader.refresh()
    assert not reader.refresh()
    assert reader.snapshot.version == "000003"
    assert len(reader.search("music", _vec(0), k=5)[0]) == 3


def test_other_model_is_refused_and_rebuild_starts_empty(tmp_path: Path, meta: Callable) -> None:
    root = tmp_path / "index"
    _fill(root, meta, ["a.wav"])
    with pytest.raises(
        IncompatibleStoreError, match=r"built by model model-A .*this model is model-B.*--rebuild"
    ):
        IndexStore.open(root, fingerprint="model-B")
    with pytest.raises(IncompatibleStoreError, match="built by model model-A"):
        IndexStore(root).begin_update("model-B", DIM)
    with pytest.raises(IncompatibleStoreError, match=r"embedding dim 16"):
        IndexStore(root).begin_update(FP, DIM * 2)
    # The refusals released the lock and left the store as it was.
    assert _paths(IndexStore.open(root, fingerprint=FP)) == ["a.wav"]
    with IndexStore(root).begin_update("model-B", DIM * 2, rebuild=True) as update:
        update.add_item("video", "v.mp4", meta(), [(0.0, 1.0)], np.ones((1, DIM * 2)))
    store = IndexStore.open(root, fingerprint="model-B")
    assert _paths(store) == []
    assert _paths(store, "video") == ["v.mp4"]
    assert store.info().dim == DIM * 2
    assert _versions(root) == ["000001", "000002"]  # the old model's version stays as previous


def test_newer_store_format_is_refused(tmp_path: Path, meta: Callable) -> None:
    root = tmp_path / "index"
    _fill(root, meta, ["a.wav"])
    pointer = json.loads((root / "CURRENT").read_text())
    (root / "CURRENT").write_text(json.dumps({**pointer, "format": 99}))
    with pytest.raises(IncompatibleStoreError, match="store format 99 by a newer crossmodal"):
        IndexStore.open(root)
    with pytest.raises(IncompatibleStoreError):
        IndexStore(root).begin_update(FP, DIM)
    _fill(root, meta, ["b.wav"], rebuild=True)
    assert _paths(IndexStore.open(root)) == ["b.wav"]


def test_bad_items_are_refused_by_name_and_the_rest_is_kept(tmp_path: Path, meta: Callable) -> None:
    root = tmp_path / "index"
    with IndexStore(root).begin_update(FP, DIM) as update:
        update.add_item("music", "good.wav", meta(), [(0.0, 1.0)], _vec(1))
        nan = _vec(2, 3)
        nan[1, 4] = np.nan
        with pytest.raises(
            InvalidVectorsError, match=r"music item 'nan\.wav'.*row 1 contains NaN or inf"
        ):
            update.add_item("music", "nan.wav", meta(), [(0, 1), (1, 2), (2, 3)], nan)
        with pytest.raises(InvalidVectorsError, match=r"'inf\.wav'.*NaN or inf"):
            update.add_item("music", "inf.wav", meta(), [(0, 1)], np.full((1, DIM), np.inf))
        with pytest.raises(InvalidVectorsError, match=r"'wide\.wav'.*expected shape \(N, 16\)"):
            update.add_item("music", "wide.wav", meta(), [(0, 1)], np.ones((1, DIM + 1)))
        with pytest.raises(InvalidVectorsError, match=r"'few\.wav'.*for 2 window"):
            update.add_item("music", "few.wav", meta(), [(0, 1), (1, 2)], _vec(3))
        with pytest.raises(InvalidVectorsError, match=r"window 0 \(3.0, 1.0\)"):
            update.add_item("music", "back.wav", meta(), [(3, 1)], _vec(3))
        with pytest.raises(InvalidVectorsError, match="at least one window"):
            update.add_item("music", "none.wav", meta(), [], np.zeros((0, DIM)))
        # A failed re-add of a catalogued file loses nothing either.
        with pytest.raises(InvalidVectorsError):
            update.add_item("music", "good.wav", meta(), [(0, 1)], np.zeros((1, DIM)))
    store = IndexStore.open(root)
    assert _paths(store) == ["good.wav"]
    assert store.info().windows["music"] == 1


def test_exception_in_update_keeps_the_previous_version(tmp_path: Path, meta: Callable) -> None:
    root = tmp_path / "index"
    _fill(root, meta, ["a.wav"])

    def index_then_crash() -> None:
        with IndexStore(root).begin_update(FP, DIM) as update:
            update.add_item("music", "b.wav", meta(), [(0.0, 1.0)], _vec(1))
            raise RuntimeError("decoder crashed")

    with pytest.raises(RuntimeError, match="decoder crashed"):
        index_then_crash()
    assert _versions(root) == ["000001"]  # staging folder removed
    assert _paths(IndexStore.open(root)) == ["a.wav"]
    _fill(root, meta, ["c.wav"])  # the lock was released
    assert _paths(IndexStore.open(root)) == ["a.wav", "c.wav"]


def test_missing_empty_and_garbled_index_dirs(tmp_path: Path, meta: Callable) -> None:
    with pytest.raises(StoreNotFoundError, match="does not exist"):
        IndexStore.open(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreNotFoundError, match="is empty"):
        IndexStore.open(tmp_path / "empty")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(StoreNotFoundError, match="not a crossmodal index"):
        IndexStore.open(tmp_path / "photos")
    with pytest.raises(StoreError, match="not empty and is not a crossmodal index"):
        IndexStore(tmp_path / "photos").begin_update(FP, DIM)
    assert os.listdir(tmp_path / "photos") == ["cat.jpg"]
    root = tmp_path / "index"
    _fill(root, meta, ["a.wav"])
    (root / "CURRENT").write_text('{"format": 1, "vers')
    with pytest.raises(StoreCorruptError, match="CURRENT is damaged"):
        IndexStore.open(root)
    (root / "CURRENT").write_text('{"format": 1, "version": "000009"}')
    with pytest.raises(StoreCorruptError, match="version 000009 named by CURRENT is missing"):
        IndexStore.open(root)
    _fill(root, meta, ["b.wav"], rebuild=True)  # --rebuild recovers a damaged store
    assert _paths(IndexStore.open(root)) == ["b.wav"]


def test_damaged_published_files_are_reported(tmp_path: Path, meta: Callable) -> None:
    root = tmp_path / "index"
    _fill(root, meta, ["a.wav"])
    faiss_file = root / "versions/000001/music.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:-10])
    with pytest.raises(StoreCorruptError, match=r"music\.faiss has \d+ bytes, its manifest says"):
        IndexStore.open(root)
    (root / "versions/000001/MANIFEST.json").unlink()
    with pytest.raises(StoreCorruptError, match="not a complete version"):
        IndexStore.open(root)


def test_a_half_written_version_is_ignored_and_cleaned(tmp_path: Path, meta: Callable) -> None:
    root = tmp_path / "index"
    _fill(root, meta, ["a.wav"])
    # What a writer killed mid-way leaves: an unpublished numbered folder and a staging one.
    (root / "versions/000002").mkdir()
    (root / "versions/000002/catalog.sqlite").write_bytes(b"\0" * 100)
    (root / "versions/.staging-000003-999999").mkdir()
    (root / "versions/.staging-000003-999999/music.faiss").write_bytes(b"half")
    assert _paths(IndexStore.open(root)) == ["a.wav"]
    _fill(root, meta, ["b.wav"])
    assert _versions(root) == ["000001", "000003"]
    assert _paths(IndexStore.open(root)) == ["a.wav", "b.wav"]


def test_second_writer_is_refused_and_a_dead_writers_lock_is_taken_over(
    tmp_path: Path, meta: Callable, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "index"
    first = IndexStore(root).begin_update(FP, DIM)
    with pytest.raises(
        StoreLockedError, match=rf"being updated by another process \(pid {os.getpid()} "
    ):
        IndexStore(root).begin_update(FP, DIM)
    first.abort()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    (root / "LOCK").write_text(f"pid {dead.stdout.strip()} host somewhere\n")
    with caplog.at_level(logging.WARNING, logger="crossmodal.retrieval"):
        _fill(root, meta, ["a.wav"])
    assert f"left by dead process pid {dead.stdout.strip()}" in caplog.text
    assert (root / "LOCK").read_text() == ""  # released


def test_updater_cannot_be_used_after_commit(tmp_path: Path, meta: Callable) -> None:
    update = IndexStore(tmp_path / "i").begin_update(FP, DIM)
    info = update.commit()
    assert info.version == "000001"
    assert info.items == {"music": 0, "video": 0}
    with pytest.raises(StoreError, match="already committed"):
        update.add_item("music", "a.wav", meta(), [(0, 1)], _vec(0))
    assert IndexStore.open(tmp_path / "i").search("music", _vec(0), k=3) == [[]]


def test_auto_kind_grows_to_hnsw_and_compacts(
    tmp_path: Path, meta: Callable, clustered: Callable
) -> None:
    root = tmp_path / "index"
    params = IndexParams(flat_max=300, hnsw_m=8, tombstone_ratio=0.2)
    vectors = clustered(400, DIM)
    with IndexStore(root).begin_update(FP, DIM, params=params) as update:
        _add_five_window_items(update, meta, vectors, range(40))
    assert IndexStore.open(root).info().index_kinds["music"] == "flat"  # 200 < 300
    with IndexStore(root).begin_update(FP, DIM) as update:  # the stored policy is reused
        _add_five_window_items(update, meta, vectors, range(40, 80))
    store = IndexStore.open(root)
    assert store.info().index_kinds["music"] == "hnsw"
    assert store.snapshot.index("music").num_tombstones == 0
    with IndexStore(root).begin_update(FP, DIM) as update:
        for i in range(10):
            update.remove_item(f"{i}.wav")
    store.refresh()
    hnsw = store.snapshot.index("music")
    assert (hnsw.kind, len(hnsw), hnsw.num_tombstones) == ("hnsw", 350, 50)  # 50/400 < 20 %
    assert all(
        not h.item.path.startswith(("0.", "1."))
        for h in store.search("music", vectors[:10], k=5)[0]
    )
    with IndexStore(root).begin_update(FP, DIM) as update:
        for i in range(10, 30):
            update.remove_item(f"{i}.wav")
    store.refresh()
    hnsw = store.snapshot.index("music")
    assert (hnsw.kind, len(hnsw), hnsw.num_tombstones, hnsw.ntotal) == ("hnsw", 250, 0, 250)
    with IndexStore(root).begin_update(FP, DIM) as update:  # well below flat_max: back to exact
        for i in range(30, 70):
            update.remove_item(f"{i}.wav")
    store.refresh()
    assert store.info().index_kinds["music"] == "flat"
    assert store.info().windows["music"] == 50


def test_explicit_ivfpq_with_too_few_vectors_fails_the_commit_cleanly(
    tmp_path: Path, meta: Callable
) -> None:
    root = tmp_path / "index"
    _fill(root, meta, ["a.wav"])
    with pytest.raises(
        TooFewVectorsError, match="music index would hold 4 vectors, too few to train ivfpq"
    ):
        _fill(root, meta, ["b.wav"], params=IndexParams(kind="ivfpq"))
    assert _versions(root) == ["000001"]
    assert _paths(IndexStore.open(root)) == ["a.wav"]


def test_reindex_switches_kind_of_an_unchanged_store(
    tmp_path: Path, meta: Callable, clustered: Callable
) -> None:
    root = tmp_path / "index"
    vectors = clustered(300, DIM)
    with IndexStore(root).begin_update(FP, DIM) as update:
        for i in range(100):
            update.add_item(
                "music", f"{i}.wav", meta(), [(0, 1), (1, 2), (2, 3)], vectors[3 * i : 3 * i + 3]
            )
    flat = IndexStore.open(root)
    queries = clustered(5, DIM, seed=1)
    exact = [[h.item.path for h in hits] for hits in flat.search("music", queries, k=5)]
    with IndexStore(root).begin_update(
        FP, DIM, params=IndexParams(kind="hnsw", hnsw_ef_search=300)
    ) as update:
        update.reindex("music")
    store = IndexStore.open(root)
    assert store.info().index_kinds == {"music": "hnsw", "video": "flat"}
    # A small graph searched with a wide beam finds the exact answer.
    assert [[h.item.path for h in hits] for hits in store.search("music", queries, k=5)] == exact
    with IndexStore(root).begin_update(FP, DIM) as update:  # the new policy was stored
        update.remove_item("0.wav")
        update.reindex("music")  # compacts the graph now rather than at 10 % dead
    store.refresh()
    assert store.snapshot.index("music").num_tombstones == 0
    assert store.info().index_kinds["music"] == "hnsw"


def test_ivfpq_store_cannot_be_converted(
    tmp_path: Path, meta: Callable, clustered: Callable
) -> None:
    root = tmp_path / "index"
    params = IndexParams(kind="ivfpq", ivf_nlist=16, pq_m=4, pq_nbits=4)  # trains on >= 624 vectors
    vectors = clustered(700, DIM)
    with IndexStore(root).begin_update(FP, DIM, params=params) as update:
        _add_five_window_items(update, meta, vectors, range(140))
    store = IndexStore.open(root)
    assert store.info().index_kinds == {"music": "ivfpq", "video": "flat"}
    assert store.search("music", vectors[0], k=3)[0][0].item.path == "0.wav"
    with pytest.raises(
        IncompatibleStoreError, match=r"music index is ivfpq.*cannot be converted to flat"
    ):
        IndexStore(root).begin_update(FP, DIM, params=IndexParams(kind="flat"))
    with IndexStore(root).begin_update(FP, DIM, params=IndexParams()) as update:  # auto keeps it
        update.remove_item("0.wav")
        update.reindex("music")
    store.refresh()
    assert store.info().index_kinds["music"] == "ivfpq"
    assert store.info().windows["music"] == 695
