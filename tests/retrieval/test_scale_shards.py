"""CLI end to end: `--shard I/N` + `--merge-shards N` equals one process; `--store milvus:` answers as faiss."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from crossmodal.apps.cli import main
from crossmodal.data.synth.corpus import SynthConfig, generate_corpus
from crossmodal.errors import CrossmodalError
from crossmodal.model import CrossModalModel, ModelConfig
from crossmodal.retrieval import IndexStore
from crossmodal.retrieval.shards import merge_shards, parse_shard


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five synthetic clips and one broken file, in one folder."""
    out = tmp_path_factory.mktemp("corpus")
    manifest = generate_corpus(
        out, SynthConfig(clips=5, size=48, split=(1.0, 0.0, 0.0)), progress=False
    )
    folder = out / "library"
    shutil.copytree(manifest.parent / "videos", folder)
    (folder / "broken.mp4").write_text("not a video")
    return folder


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "model.pt"
    CrossModalModel.from_config(ModelConfig(embed_dim=32)).eval().save(path)
    return path


def _index(model_file: Path, library: Path, out: Path, *extra: str) -> int:
    args = ["index", "--checkpoint", str(model_file), "--out", str(out), "--device", "cpu"]
    return main([*args, "--music", str(library), "--videos", str(library), *extra])


def _catalog(root: Path) -> list[tuple]:
    store = IndexStore.open(root)
    rows = []
    for modality in ("music", "video"):
        table = store.snapshot.catalog.window_table(modality)
        items = {i.item_id: i for i in store.snapshot.items(modality)}
        rows += [
            (modality, items[i].path, items[i].checksum, float(a), float(b), int(v))
            for v, i, a, b in zip(
                table.vector_ids, table.item_ids, table.starts, table.ends, strict=True
            )
        ]
    return rows


def test_sharded_embedding_then_merge_equals_one_process(
    tmp_path: Path, library: Path, model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    assert _index(model_file, library, single) == 1  # the broken file
    for shard in (2, 0):  # any order; shard 1 is missing at first
        _index(model_file, library, sharded, "--shard", f"{shard}/3")
    with pytest.raises(CrossmodalError, match="shard-1-of-3"):
        merge_shards(sharded, 3)
    assert IndexStore(sharded).current_version() is None  # nothing published by shards
    _index(model_file, library, sharded, "--shard", "1/3")
    capsys.readouterr()
    code = main(
        ["index", "--checkpoint", str(model_file), "--out", str(sharded), "--merge-shards", "3"]
    )
    out = capsys.readouterr()
    assert code == 1, out  # the broken file is reported by the merge too
    assert "broken.mp4" in out.err
    assert "music: 5 embedded" in out.out
    assert _catalog(sharded) == _catalog(single)
    a, b = IndexStore.open(single), IndexStore.open(sharded)
    for modality in ("music", "video"):
        ids_a, vec_a = a.snapshot.index(modality).vectors()
        ids_b, vec_b = b.snapshot.index(modality).vectors()
        np.testing.assert_array_equal(ids_a, ids_b)
        np.testing.assert_allclose(vec_a, vec_b, atol=1e-6)
        queries = vec_a[::3]
        for hits_a, hits_b in zip(
            a.search(modality, queries, k=4), b.search(modality, queries, k=4), strict=True
        ):
            assert [(h.item.path, h.vector_id) for h in hits_a] == [
                (h.item.path, h.vector_id) for h in hits_b
            ]
    assert not list((sharded / "shards").iterdir())  # merged shard files are removed


def test_shard_spec_is_checked() -> None:
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "a/b", "1", "-1/3"):
        with pytest.raises(CrossmodalError, match="I/N"):
            parse_shard(bad)


def test_cli_store_milvus_and_recommender_give_the_faiss_answers(
    tmp_path: Path, library: Path, model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    from crossmodal.retrieval.milvus_store import MilvusStore
    from crossmodal.retrieval.recommender import Recommender

    local, mirrored = tmp_path / "local", tmp_path / "mirrored"
    _index(model_file, library, local)
    _index(model_file, library, mirrored, "--store", f"milvus:{tmp_path / 'milvus.db'}")
    assert "mirrored to Milvus" in capsys.readouterr().out
    query = library / "clip_000001.mp4"
    faiss_rec = Recommender.load(local)
    milvus_rec = Recommender.load(mirrored)
    assert isinstance(milvus_rec.store, MilvusStore)
    for method in ("recommend_music", "find_videos"):
        expected = getattr(faiss_rec, method)(query, k=3)
        got = getattr(milvus_rec, method)(query, k=3)
        assert [(m.path, m.start) for m in got] == [(m.path, m.start) for m in expected]
        np.testing.assert_allclose([m.score for m in got], [m.score for m in expected], atol=1e-5)
    milvus_rec.close()
