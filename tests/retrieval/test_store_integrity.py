"""Stores prove their integrity: content hashes, vector norms, untrusted catalogs,
publish failures, leftovers, change detection by content and runs that change nothing."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import pytest

import crossmodal.retrieval.layout as layout
from crossmodal.retrieval import IndexStore, StoreCorruptError, StoreError
from crossmodal.retrieval.catalog import Catalog
from crossmodal.retrieval.checksum import SIGNATURE_BLOCK, file_signature
from crossmodal.retrieval.layout import CATALOG, MANIFEST, read_pointer, write_manifest

DIM = 8
FP = "model-A"


def _vec(seed: int, n: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def _store(root: Path, meta: Callable, names: tuple[str, ...] = ("a.wav", "b.wav")) -> Path:
    with IndexStore(root).begin_update(FP, DIM) as update:
        for i, name in enumerate(names):
            update.add_item("music", name, meta(), [(0.0, 2.0), (2.0, 4.0)], _vec(i))
        update.add_item("video", "v.mp4", meta(), [(0.0, 2.0), (2.0, 4.0)], _vec(9))
    return root / "versions" / read_pointer(root).version


def _republish_manifest(version_dir: Path) -> None:
    """Rewrite MANIFEST.json over the version's current files (as an attacker who edits
    the store would): only the checks beyond the hashes can catch what follows."""
    (version_dir / MANIFEST).unlink()
    write_manifest(version_dir, {"store_format": 1, "version": version_dir.name, "fingerprint": FP})
    layout._verified.clear()


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    st = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("name", ["music.faiss", CATALOG, "video.index.json"])
def test_same_size_corruption_is_caught_by_the_content_hash(
    tmp_path: Path, meta: Callable, name: str
) -> None:
    version = _store(tmp_path / "index", meta)
    target = version / name
    _flip_byte(target, target.stat().st_size - 40)
    layout._verified.clear()
    with pytest.raises(StoreCorruptError, match=f"{name} is damaged: its content hash"):
        IndexStore.open(tmp_path / "index")
    # The writer refuses to build on a damaged version too (it would copy the damage on).
    with pytest.raises(StoreCorruptError, match="content hash"):
        IndexStore(tmp_path / "index").begin_update(FP, DIM)


def test_each_file_is_hashed_once_per_process(
    tmp_path: Path, meta: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = _store(tmp_path / "index", meta)
    layout._verified.clear()
    calls: list[str] = []
    real = layout._hash_file
    monkeypatch.setattr(layout, "_hash_file", lambda p: calls.append(p.name) or real(p))
    for _ in range(3):
        IndexStore.open(tmp_path / "index").close()
    listed = json.loads((version / MANIFEST).read_text())["files"]
    assert sorted(calls) == sorted(listed)


def test_versions_without_hashes_still_open(tmp_path: Path, meta: Callable) -> None:
    version = _store(tmp_path / "index", meta)
    manifest = json.loads((version / MANIFEST).read_text())
    manifest["files"] = {name: entry["size"] for name, entry in manifest["files"].items()}
    (version / MANIFEST).write_text(json.dumps(manifest))
    assert IndexStore.open(tmp_path / "index").info().items == {"music": 2, "video": 1}


def test_non_unit_vectors_are_refused_on_load(tmp_path: Path, meta: Callable) -> None:
    version = _store(tmp_path / "index", meta)
    index = faiss.read_index(str(version / "music.faiss"))
    rows = faiss.downcast_index(index.index).reconstruct_n(0, index.ntotal) * 5.547
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    forged = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    forged.add_with_ids(rows, ids)
    faiss.write_index(forged, str(version / "music.faiss"))
    _republish_manifest(version)
    with pytest.raises(StoreCorruptError, match=r"has length 5\.54"):
        IndexStore.open(tmp_path / "index")


def _craft(version: Path, *statements: str) -> None:
    conn = sqlite3.connect(version / CATALOG)
    conn.execute("PRAGMA ignore_check_constraints=ON")
    for sql in statements:
        conn.execute(sql)
    conn.commit()
    conn.close()
    _republish_manifest(version)


@pytest.mark.timeout(30)
def test_a_view_named_meta_is_refused_without_running_it(tmp_path: Path, meta: Callable) -> None:
    version = _store(tmp_path / "index", meta)
    _craft(
        version,
        "ALTER TABLE meta RENAME TO meta_real",
        "CREATE VIEW meta AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
        "SELECT 'schema' AS key, '1' AS value FROM c",
    )
    start = time.monotonic()
    with pytest.raises(StoreCorruptError, match="view 'meta'"):
        IndexStore.open(tmp_path / "index")
    assert time.monotonic() - start < 5


def test_a_runaway_query_is_stopped_by_the_time_budget(
    tmp_path: Path, meta: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = _store(tmp_path / "index", meta)
    catalog = Catalog.open(version / CATALOG)
    monkeypatch.setattr(Catalog, "query_seconds", 0.2)
    start = time.monotonic()
    with pytest.raises(StoreCorruptError, match=r"longer than 0\.2 s"):
        catalog._query(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"
        )
    assert time.monotonic() - start < 3
    assert catalog.count_items() == 3  # the connection still works afterwards
    catalog.close()


@pytest.mark.parametrize(
    ("statements", "needle"),
    [
        (["UPDATE meta SET value = '{not json' WHERE key = 'dim'"], "meta 'dim' is not valid JSON"),
        (["DELETE FROM meta WHERE key = 'fingerprint'"], "'fingerprint' is None"),
        (["UPDATE meta SET value = '\"8\"' WHERE key = 'dim'"], "'dim' is '8'"),
        (["UPDATE items SET extra = '[1, 2' WHERE item_id = 1"], "extra is not valid JSON"),
        (["UPDATE items SET size = 'big' WHERE item_id = 1"], "item row 1 is malformed"),
        (["UPDATE windows SET start_s = 'soon' WHERE vector_id = 0"], "not numbers"),
        (["UPDATE windows SET end_s = -1 WHERE vector_id = 0"], "reversed times"),
        (["CREATE TRIGGER t AFTER INSERT ON items BEGIN SELECT 1; END"], "trigger 't'"),
        (["DROP TABLE windows"], "table 'windows' is missing"),
    ],
)
def test_malformed_catalog_rows_are_one_line_errors(
    tmp_path: Path, meta: Callable, statements: list[str], needle: str
) -> None:
    version = _store(tmp_path / "index", meta)
    _craft(version, *statements)

    def open_and_search() -> None:
        store = IndexStore.open(tmp_path / "index")
        store.search("music", _vec(5, 1), k=3)
        store.snapshot.items()

    with pytest.raises(StoreCorruptError) as exc:
        open_and_search()
    message = str(exc.value)
    assert needle in message
    assert "\n" not in message
    assert "rebuild" in message


def test_an_unopenable_catalog_during_a_publish_is_retried(
    tmp_path: Path, meta: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "index"
    _store(root, meta)
    real_connect = sqlite3.connect
    calls = {"n": 0}

    def racing_connect(*args: object, **kw: object) -> sqlite3.Connection:
        calls["n"] += 1
        if calls["n"] == 1:  # a writer publishes meanwhile, and the version we open vanishes
            with IndexStore(root).begin_update(FP, DIM) as update:
                update.add_item("music", "c.wav", meta(), [(0.0, 2.0)], _vec(3, 1))
            raise sqlite3.OperationalError("unable to open database file")
        return real_connect(*args, **kw)

    monkeypatch.setattr("crossmodal.retrieval.catalog.sqlite3.connect", racing_connect)
    store = IndexStore.open(root)
    assert store.info().items["music"] == 3  # the new version, on the second attempt


def test_disk_full_while_publishing_is_one_line_and_keeps_the_version(
    tmp_path: Path, meta: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "index"
    _store(root, meta)
    before = read_pointer(root).version
    real_write = faiss.write_index

    def write_to_full_disk(index: object, writer: object) -> None:
        # The disk fills up while faiss writes: a real ENOSPC from the kernel.
        with open("/dev/full", "wb") as full:
            real_write(index, faiss.PyCallbackIOWriter(full.write))

    monkeypatch.setattr(faiss, "write_index", write_to_full_disk)
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    with pytest.raises(StoreError) as exc, IndexStore(root).begin_update(FP, DIM) as update:
        update.add_item("music", "c.wav", meta(), [(0.0, 2.0)], _vec(3, 1))
    message = str(exc.value)
    assert "\n" not in message
    assert ".tmp.faiss" in message  # names the file it could not write
    assert f"version {before} is still the current one" in message
    assert "No space left on device" in message
    assert "free some space" in message
    monkeypatch.undo()
    assert read_pointer(root).version == before
    assert IndexStore.open(root).info().items["music"] == 2
    assert [p.name for p in (root / "versions").iterdir() if p.name.startswith(".")] == []
    with IndexStore(root).begin_update(FP, DIM):  # the lock was released
        pass


def test_temp_files_of_killed_writers_are_removed(tmp_path: Path, meta: Callable) -> None:
    root = tmp_path / "index"
    _store(root, meta)
    (root / ".CURRENT.k1l2.tmp").write_text("{")
    (root / "models").mkdir(exist_ok=True)
    (root / "models" / ".abc.x9y8.tmp.pt").write_bytes(b"half")
    (root / "keep.txt").write_text("not ours")
    with IndexStore(root).begin_update(FP, DIM) as update:
        update.add_item("music", "c.wav", meta(), [(0.0, 2.0)], _vec(3, 1))
    assert not (root / ".CURRENT.k1l2.tmp").exists()
    assert not (root / "models" / ".abc.x9y8.tmp.pt").exists()
    assert (root / "keep.txt").exists()


def test_checkpoint_saves_remove_their_own_leftovers(tmp_path: Path) -> None:
    from crossmodal.checkpoint import save_checkpoint

    (tmp_path / ".last.a1b2.tmp.pt").write_bytes(b"half")
    (tmp_path / ".best.c3d4.tmp.pt").write_bytes(b"another file's")
    save_checkpoint(tmp_path / "last.pt", {"epoch": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".best.c3d4.tmp.pt", "last.pt"]


def test_signature_sees_content_changes_that_keep_size_and_mtime(tmp_path: Path) -> None:
    small, large = tmp_path / "small.wav", tmp_path / "large.wav"
    small.write_bytes(bytes(range(256)) * 100)
    large.write_bytes(os.urandom(5 * SIGNATURE_BLOCK))
    for path in (small, large):
        before = file_signature(path)
        assert file_signature(path) == before  # deterministic
        for offset in (0, path.stat().st_size // 2, path.stat().st_size - 1):
            if path is large and offset == path.stat().st_size // 2:
                continue  # the middle of a large file is not read (documented)
            _flip_byte(path, offset)
            assert file_signature(path) != before, (path.name, offset)
            _flip_byte(path, offset)
            assert file_signature(path) == before
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # 1 ns is a change
        assert file_signature(path) != before


def test_updater_compares_signatures(tmp_path: Path, meta: Callable) -> None:
    root = tmp_path / "index"
    media = tmp_path / "a.wav"
    media.write_bytes(b"RIFF" + bytes(1000))
    st = media.stat()
    signature = file_signature(media)
    with IndexStore(root).begin_update(FP, DIM) as update:
        update.add_item(
            "music",
            media,
            meta(size=st.st_size, mtime=st.st_mtime, checksum=signature),
            [(0.0, 2.0)],
            _vec(1, 1),
        )
    _flip_byte(media, 10)
    with IndexStore(root).begin_update(FP, DIM) as update:
        assert not update.needs_embedding(media, st.st_size, st.st_mtime, signature)
        assert update.needs_embedding(media, st.st_size, st.st_mtime, file_signature(media))
        # Items catalogued before signatures (a full sha256) fall back to size and mtime.
        update.add_item(
            "music", "old.wav", meta(checksum="sha256:" + "0" * 64), [(0.0, 2.0)], _vec(2, 1)
        )
        assert not update.needs_embedding("old.wav", 1000, 1.5e9, "sig1:" + "1" * 64)
        assert update.needs_embedding("old.wav", 1001, 1.5e9, "sig1:" + "1" * 64)


def test_an_update_that_changes_nothing_publishes_nothing(tmp_path: Path, meta: Callable) -> None:
    root = tmp_path / "index"
    _store(root, meta)
    before = read_pointer(root)
    versions = sorted(os.listdir(root / "versions"))
    with IndexStore(root).begin_update(FP, DIM) as update:
        assert not update.needs_embedding("a.wav", 1000, 1.5e9, "sha256:00")
    info = update.commit() if not update._done else None
    assert info is None
    assert not update.published
    assert read_pointer(root) == before
    assert sorted(os.listdir(root / "versions")) == versions
    # A change of index policy alone is a change.
    from crossmodal.retrieval import IndexParams

    with IndexStore(root).begin_update(
        FP, DIM, params=IndexParams(kind="flat", flat_max=10)
    ) as update:
        pass
    assert update.published
    assert read_pointer(root).version != before.version


def test_failures_are_remembered_until_the_file_changes(tmp_path: Path, meta: Callable) -> None:
    root = tmp_path / "index"
    _store(root, meta)
    with IndexStore(root).begin_update(FP, DIM) as update:
        assert update.known_failure("music", "bad.mp3", "sig1:aa") is None
        update.record_failure("music", "bad.mp3", "sig1:aa", "not media")
    assert update.published  # the failure is news: remembered in a new version
    with IndexStore(root).begin_update(FP, DIM) as update:
        assert update.known_failure("music", "bad.mp3", "sig1:aa") == "not media"
        assert update.known_failure("music", "bad.mp3", "sig1:bb") is None  # changed: retry
        assert update.known_failure("video", "bad.mp3", "sig1:aa") is None
        update.record_failure("music", "bad.mp3", "sig1:aa", "not media")  # same again
    assert not update.published
    with IndexStore(root).begin_update(FP, DIM) as update:
        update.add_item("music", "bad.mp3", meta(), [(0.0, 2.0)], _vec(4, 1))  # fixed now
    with IndexStore(root).begin_update(FP, DIM) as update:
        assert update.known_failure("music", "bad.mp3", "sig1:aa") is None
