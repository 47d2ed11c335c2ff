"""A writer killed at any point leaves the previous version readable; readers run beside a writer."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crossmodal.retrieval import IndexStore, ItemMeta

WORKER = Path(__file__).with_name("store_worker.py")
DIM = 16
FP = "model-A"

BASE_MUSIC = {f"m{i:02d}.wav" for i in range(20)}
NEW_MUSIC = {f"m{i:02d}.wav" for i in range(30)} - {"m05.wav", "m06.wav"}


def _worker(*args: object, timeout: float = 240) -> None:
    done = subprocess.run(
        [sys.executable, str(WORKER), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"worker {args[0]} failed:\n{done.stdout}\n{done.stderr}"


def _contents(store: IndexStore) -> tuple[set[str], set[str]]:
    snap = store.snapshot
    return {i.path for i in snap.items("music")}, {i.path for i in snap.items("video")}


@pytest.mark.slow
def test_writer_killed_at_any_point_leaves_a_readable_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _worker("kill-sweep", tmp_path)
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    cases, publish = sweep["cases"], sweep["publish"]
    assert sweep["total"] > 1000  # the sweep covers begin_update, add_item and commit
    assert all(case["killed"] for case in cases)
    assert any(c["kill_at"] == publish for c in cases)
    assert any(c["kill_at"] == publish + 1 for c in cases)
    query = np.random.default_rng(0).standard_normal((3, DIM))
    for case in cases:
        root = tmp_path / case["dir"]
        where = f"killed at event {case['kill_at']} {case['event']}"
        with IndexStore.open(root, fingerprint=FP) as store:
            music, video = _contents(store)
            if case["kill_at"] <= publish:  # CURRENT not yet replaced: the old version, whole
                assert store.snapshot.version == "000001", where
                assert (music, video) == (BASE_MUSIC, {"v0.mp4", "v1.mp4"}), where
                assert store.info().index_kinds["music"] == "flat", where
            else:  # replaced: the new version, whole
                assert store.snapshot.version == "000002", where
                assert (music, video) == (NEW_MUSIC, {"v0.mp4", "v1.mp4", "v9.mp4"}), where
                assert store.info().index_kinds["music"] == "hnsw", where
                assert store.snapshot.items_by_path("m03.wav")[0].size == 11, where
            assert all(len(row) == 3 for row in store.search("music", query, k=3)), where
            before = store.snapshot.version
        # The next writer takes the lock over, clears the leftovers and publishes.
        with (
            caplog.at_level(logging.WARNING, logger="crossmodal.retrieval"),
            IndexStore(root).begin_update(FP, DIM) as update,
        ):
            update.add_item("music", "extra.wav", ItemMeta(1, 1.0, "x"), [(0.0, 1.0)], query[:1])
        with IndexStore.open(root, fingerprint=FP) as store:
            assert _contents(store)[0] == music | {"extra.wav"}, where
            versions = sorted(os.listdir(root / "versions"))
            assert versions == [before, store.snapshot.version], where
    assert "left by dead process" in caplog.text


@pytest.mark.slow
def test_two_readers_keep_answering_while_a_writer_publishes(tmp_path: Path) -> None:
    root = tmp_path / "index"
    rng = np.random.default_rng(0)
    with IndexStore(root).begin_update(FP, DIM) as update:
        for i in range(20):
            windows = [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
            update.add_item(
                "music",
                f"g00_{i:02d}.wav",
                ItemMeta(1, 1.0, "x"),
                windows,
                rng.standard_normal((3, DIM)),
            )
    generations = 8
    readers = []
    for r in range(2):
        args = [root, tmp_path / f"ready{r}", tmp_path / "done", tmp_path / f"result{r}.json"]
        readers.append(
            subprocess.Popen(
                [sys.executable, str(WORKER), "reader", *map(str, args)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        _worker("writer", root, generations, tmp_path / "ready0", tmp_path / "ready1", timeout=120)
    finally:
        (tmp_path / "done").touch()
        outputs = [proc.communicate(timeout=60) for proc in readers]
    for r, (proc, (out, err)) in enumerate(zip(readers, outputs, strict=True)):
        assert proc.returncode == 0, f"reader {r} failed:\n{out}\n{err}"
        result = json.loads((tmp_path / f"result{r}.json").read_text())
        assert result["last"] == f"{generations + 1:06d}"
        assert len(result["versions"]) >= 2  # it saw the store change under it
        assert result["searches"] >= len(result["versions"])
