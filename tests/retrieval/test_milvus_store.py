"""Milvus backend (embedded milvus-lite): same top-k as the faiss flat store, versioned reads."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from crossmodal.retrieval import IndexParams, IndexStore
from crossmodal.retrieval.errors import StoreError

# The project's set-up installs both; under CI a skip fails (tests/conftest.py).
pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from crossmodal.retrieval.milvus_store import (
    MilvusStore,
    open_store,
    parse_store,
    publish_to_milvus,
)

DIM = 32
WINDOWS = 8


def _fill(root: Path, vectors: np.ndarray, meta: Callable, start: int = 0) -> None:
    store = IndexStore(root)
    with store.begin_update("model-A", DIM, params=IndexParams(kind="flat")) as update:
        for i in range(len(vectors) // WINDOWS):
            chunk = vectors[i * WINDOWS : (i + 1) * WINDOWS]
            windows = [(float(w), w + 1.0) for w in range(WINDOWS)]
            update.add_item("music", f"lib/t{start + i:05d}.wav", meta(), windows, chunk)


@pytest.mark.slow
def test_milvus_lite_gives_the_same_top_k_as_the_faiss_flat_store(
    tmp_path: Path, clustered: Callable, meta: Callable
) -> None:
    vectors = clustered(10_000, DIM, clusters=40, seed=1)
    root = tmp_path / "index"
    _fill(root, vectors, meta)
    uri = parse_store(f"milvus:{tmp_path / 'milvus.db'}")
    assert uri is not None
    publish_to_milvus(root, uri)
    queries = clustered(40, DIM, clusters=40, seed=2)
    faiss_store = IndexStore.open(root, fingerprint="model-A")
    milvus = open_store(root, fingerprint="model-A")
    assert isinstance(milvus, MilvusStore)
    for per_item in (False, True):
        expected = faiss_store.search("music", queries, k=10, per_item=per_item)
        got = milvus.search("music", queries, k=10, per_item=per_item)
        for hits, ref in zip(got, expected, strict=True):
            assert [h.vector_id for h in hits] == [h.vector_id for h in ref]
            assert [h.item.path for h in hits] == [h.item.path for h in ref]
            np.testing.assert_allclose([h.score for h in hits], [h.score for h in ref], atol=1e-5)
    milvus.close()


def test_readers_follow_the_mirrored_version_only(
    tmp_path: Path, clustered: Callable, meta: Callable
) -> None:
    root = tmp_path / "index"
    uri = str(tmp_path / "milvus.db")
    first = clustered(160, DIM, seed=3)
    _fill(root, first, meta)
    publish_to_milvus(root, uri)
    reader = MilvusStore.open(root)
    version = reader.snapshot.version
    # A newer local version that is not mirrored yet stays invisible to Milvus readers.
    _fill(root, clustered(80, DIM, seed=4), meta, start=1000)
    assert IndexStore.open(root).snapshot.version != version
    assert reader.refresh() is False
    assert reader.info().items["music"] == 20
    publish_to_milvus(root, uri)
    assert reader.refresh() is True
    assert reader.info().items["music"] == 30
    top = reader.search("music", first[5], k=1)[0][0]
    assert top.item.path == "lib/t00000.wav"
    reader.close()
    # milvus-lite serves one process per file: another one gets an error that says so
    # (several processes or machines use a Milvus server, with the same client code).
    query = ",".join(f"{v:.8f}" for v in first[5])
    code = (
        "import numpy as np; from crossmodal.retrieval.milvus_store import open_store; "
        f"s = open_store({str(root)!r}); "
        f"print(s.search('music', np.array([{query}], np.float32), k=1)[0][0].item.path)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "milvus-lite serves one process at a time" in done.stderr


def test_store_spec_is_checked() -> None:
    assert parse_store(None) is None
    assert parse_store("faiss") is None
    assert parse_store("milvus:http://localhost:19530") == "http://localhost:19530"
    with pytest.raises(StoreError, match="milvus:PATH_OR_URI"):
        parse_store("qdrant:x")
