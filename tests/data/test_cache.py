from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from crossmodal.data import FeatureCache, module_fingerprint


@pytest.fixture
def media(tmp_path: Path) -> Path:
    path = tmp_path / "media.bin"
    path.write_bytes(os.urandom(3 << 20))  # 3 MiB: the fast hash reads its first and last MiB
    return path


def test_compute_once_then_hit(tmp_path: Path, media: Path) -> None:
    cache = FeatureCache(tmp_path / "cache")
    calls = []

    def compute() -> dict[str, np.ndarray]:
        calls.append(1)
        return {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "t": np.float64(1.5)}

    first = cache.get_or_compute(media, {"kind": "k", "size": 32}, compute)
    second = cache.get_or_compute(media, {"size": 32, "kind": "k"}, compute)  # key order irrelevant
    assert len(calls) == 1
    assert (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(second["x"], first["x"])
    assert second["x"].dtype == np.float32
    assert float(second["t"]) == 1.5
    entries = list((tmp_path / "cache").rglob("*.npz"))
    assert len(entries) == 1
    assert not list((tmp_path / "cache").rglob("*.tmp"))
    # No pickle anywhere: the entry loads with allow_pickle=False.
    with np.load(entries[0], allow_pickle=False) as npz:
        assert sorted(npz.files) == ["t", "x"]


def test_key_changes_with_params_and_content(tmp_path: Path, media: Path) -> None:
    cache = FeatureCache(tmp_path / "cache")
    base = cache.key(media, {"size": 32})
    assert cache.key(media, {"size": 64}) != base
    # Same size, same first and last MiB, new bytes in the middle and a new mtime: the
    # fast fingerprint still changes through the mtime.
    data = bytearray(media.read_bytes())
    data[(3 << 20) // 2] ^= 0xFF
    stat = media.stat()
    media.write_bytes(bytes(data))
    os.utime(media, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert cache.key(media, {"size": 32}) != base


def test_full_fingerprint_follows_content_only(tmp_path: Path, media: Path) -> None:
    fast, full = FeatureCache(tmp_path / "a"), FeatureCache(tmp_path / "b", fingerprint="full")
    fast_key, full_key = fast.key(media, {}), full.key(media, {})
    stat = media.stat()
    os.utime(media, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # touch
    assert fast.key(media, {}) != fast_key
    assert full.key(media, {}) == full_key
    data = bytearray(media.read_bytes())
    data[(3 << 20) // 2] ^= 0xFF  # a middle byte only the full hash reads
    media.write_bytes(bytes(data))
    os.utime(media, ns=(stat.st_atime_ns, stat.st_mtime_ns + 6_000_000_000))
    assert full.key(media, {}) != full_key
    copy = tmp_path / "copy.bin"
    copy.write_bytes(media.read_bytes())
    assert full.key(copy, {}) == full.key(media, {})


def test_unreadable_entry_is_recomputed(tmp_path: Path, media: Path, caplog) -> None:
    cache = FeatureCache(tmp_path / "cache")
    cache.get_or_compute(media, {}, lambda: {"x": np.ones(3)})
    (entry,) = (tmp_path / "cache").rglob("*.npz")
    entry.write_bytes(entry.read_bytes()[:20])  # truncated by a crash or a full disk
    out = cache.get_or_compute(media, {}, lambda: {"x": np.full(3, 2.0)})
    np.testing.assert_array_equal(out["x"], [2.0, 2.0, 2.0])
    assert "unreadable" in caplog.text
    np.testing.assert_array_equal(cache.get(cache.key(media, {}))["x"], [2.0, 2.0, 2.0])


def test_backbone_fingerprint_is_part_of_the_feature_key(tmp_path: Path, media: Path) -> None:
    cache = FeatureCache(tmp_path / "cache")
    net = torch.nn.Linear(4, 2)
    before = module_fingerprint(net)
    assert module_fingerprint(torch.nn.Linear(4, 2)) != before  # other weights
    assert module_fingerprint(net) == before
    assert module_fingerprint(net, {"layer": "pool"}) != before
    feats = cache.features(media, {"window": 0}, before, lambda: {"emb": np.zeros(2)})
    with torch.no_grad():
        net.weight.add_(1.0)  # fine-tuned backbone: its cached features must not be reused
    after = module_fingerprint(net)
    assert after != before
    refreshed = cache.features(media, {"window": 0}, after, lambda: {"emb": np.ones(2)})
    np.testing.assert_array_equal(feats["emb"], [0, 0])
    np.testing.assert_array_equal(refreshed["emb"], [1, 1])
    assert cache.misses == 2


def test_cache_survives_pickling_for_workers(tmp_path: Path) -> None:
    import pickle

    cache = FeatureCache(tmp_path / "c", fingerprint="full")
    clone = pickle.loads(pickle.dumps(cache))
    assert (clone.root, clone.mode, clone.hits) == (cache.root, "full", 0)
    with pytest.raises(ValueError, match="fingerprint"):
        FeatureCache(tmp_path, fingerprint="sloppy")  # type: ignore[arg-type]
