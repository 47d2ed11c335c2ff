"""Damaged and forged store files: opening, searching and updating either work or raise
one StoreError line; a reader never changes what is stored."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import crossmodal.retrieval.layout as layout
from crossmodal.retrieval import IndexStore, ItemMeta, StoreError
from crossmodal.retrieval.layout import MANIFEST, read_pointer, write_manifest

DIM = 8
FP = "model-F"
FILES = ["catalog.sqlite", "music.faiss", "music.index.json", "video.faiss", MANIFEST, "CURRENT"]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store") / "index"
    rng = np.random.default_rng(0)
    meta = ItemMeta(size=10, mtime=1.0, checksum="sig1:00", label="calm", extra={"clip_id": "x"})
    with IndexStore(root).begin_update(FP, DIM) as update:
        for i in range(6):
            update.add_item(
                "music", f"m{i}.wav", meta, [(0.0, 2.0), (2.0, 4.0)], rng.standard_normal((2, DIM))
            )
        for i in range(2):
            update.add_item("video", f"v{i}.mp4", meta, [(0.0, 2.0)], rng.standard_normal((1, DIM)))
    return root


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "LOCK"
    }


mutation = st.tuples(
    st.sampled_from(FILES),
    st.sampled_from(["flip", "truncate", "append", "replace", "empty"]),
    st.lists(st.integers(min_value=0, max_value=2**20), min_size=1, max_size=6),
    st.binary(min_size=1, max_size=64),
)


def _mutate(path: Path, action: str, offsets: list[int], data: bytes) -> None:
    content = bytearray(path.read_bytes())
    if action == "flip" and content:
        for offset in offsets:
            content[offset % len(content)] ^= data[0] | 1
    elif action == "truncate":
        content = content[: offsets[0] % max(len(content), 1)]
    elif action == "append":
        content += data
    elif action == "replace":
        content = bytearray(data * (offsets[0] % 50 + 1))
    else:
        content = bytearray()
    path.write_bytes(bytes(content))


@given(mutations=st.lists(mutation, min_size=1, max_size=3), forge_manifest=st.booleans())
def test_damaged_stores_fail_in_one_line_and_stay_untouched(
    template: Path, tmp_path_factory: pytest.TempPathFactory, mutations: list, forge_manifest: bool
) -> None:
    root = tmp_path_factory.mktemp("fuzz") / "index"
    shutil.copytree(template, root)
    version = root / "versions" / read_pointer(root).version
    for name, action, offsets, data in mutations:
        _mutate(root / name if name == "CURRENT" else version / name, action, offsets, data)
    if forge_manifest and (version / MANIFEST).exists():
        # An attacker who also rewrites the manifest: only the deeper checks remain.
        (version / MANIFEST).unlink()
        write_manifest(version, {"store_format": 1, "version": version.name, "fingerprint": FP})
    layout._verified.clear()
    before = _digests(root)
    errors = []
    try:
        with IndexStore.open(root) as store:
            query = np.random.default_rng(1).standard_normal((2, DIM))
            for modality in ("music", "video"):
                scores = [h.score for hits in store.search(modality, query, k=3) for h in hits]
                assert all(-1.001 <= s <= 1.001 for s in scores), scores
            store.snapshot.items()
    except StoreError as err:
        errors.append(str(err))
    try:
        IndexStore(root).begin_update(FP, DIM).abort()
    except StoreError as err:
        errors.append(str(err))
    assert all("\n" not in e for e in errors), errors
    assert _digests(root) == before
