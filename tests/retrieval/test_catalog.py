from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from crossmodal.retrieval import Catalog, StoreCorruptError, resolve_path


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog.create(tmp_path / "catalog.sqlite")


def test_items_windows_and_vector_ids(catalog: Catalog, meta: Callable, tmp_path: Path) -> None:
    song, ids_song, _ = catalog.add_item(
        "music", "a/song.wav", meta(duration=12.0, label="calm"), [(0, 4), (4, 8), (8, 12)]
    )
    clip, ids_clip, _ = catalog.add_item("video", "b/clip.mp4", meta(extra={"fps": 25}), [(0, 2)])
    assert ids_song.tolist() == [0, 1, 2]
    assert ids_clip.tolist() == [3]
    assert song.path == "a/song.wav"
    assert song.resolved_path == resolve_path("a/song.wav")
    assert Path(song.resolved_path).is_absolute()
    [found] = catalog.items_by_path(os.path.join(os.getcwd(), "a", "song.wav"))
    assert found == song
    assert found.duration == 12.0
    assert found.label == "calm"
    assert catalog.items_by_path("b/clip.mp4")[0].extra == {"fps": 25}
    assert [w.start for w in catalog.windows_for([2, 0, 99, 3])] == [8.0, 0.0, 0.0]
    assert [w.item_id for w in catalog.windows_for([3])] == [clip.item_id]
    assert [i.item_id for i in catalog.items("music")] == [song.item_id]
    assert catalog.count_windows() == 4
    assert catalog.count_windows("video") == 1
    table = catalog.window_table("music")
    assert table.vector_ids.tolist() == [0, 1, 2]
    assert table.ends.tolist() == [4.0, 8.0, 12.0]
    assert table.positions(np.array([[2, 7], [-1, 0]])).tolist() == [[2, -1], [-1, 0]]
    assert catalog.items_by_ids([clip.item_id, 999]) == {clip.item_id: clip}


def test_deleted_ids_are_never_reused(catalog: Catalog, meta: Callable) -> None:
    first, ids, _ = catalog.add_item("music", "x.wav", meta(), [(0, 1), (1, 2)])
    assert catalog.delete_item(first.item_id).tolist() == ids.tolist()
    assert catalog.windows_for(ids) == []
    assert catalog.items() == []
    again, new_ids, _ = catalog.add_item("music", "x.wav", meta(), [(0, 1)])
    assert again.item_id > first.item_id
    assert new_ids.tolist() == [2]
    assert catalog.delete_item(12345).tolist() == []


def test_one_path_per_modality(catalog: Catalog, meta: Callable) -> None:
    catalog.add_item("music", "mv.mp4", meta(), [(0, 1)])
    catalog.add_item("video", "mv.mp4", meta(), [(0, 1)])  # a music video may be both
    with pytest.raises(sqlite3.IntegrityError):
        catalog.add_item("music", "./mv.mp4", meta(), [(0, 1)])
    assert catalog.count_windows() == 2  # the failed insert left nothing behind
    with pytest.raises(ValueError, match="modality"):
        catalog.add_item("speech", "s.wav", meta(), [(0, 1)])


def test_unchanged_checks_size_mtime_and_checksum(catalog: Catalog, meta: Callable) -> None:
    catalog.add_item("music", "a.wav", meta(size=10, mtime=100.25, checksum="sha256:aa"), [(0, 1)])
    assert catalog.is_unchanged("a.wav", 10, 100.25, "sha256:aa")
    assert catalog.is_unchanged("a.wav", 10, 100.25, None)
    assert not catalog.is_unchanged("a.wav", 11, 100.25, "sha256:aa")
    assert not catalog.is_unchanged("a.wav", 10, 100.5, "sha256:aa")
    assert not catalog.is_unchanged("a.wav", 10, 100.25, "sha256:bb")
    assert not catalog.is_unchanged("b.wav", 10, 100.25, "sha256:aa")
    assert not catalog.is_unchanged("a.wav", 10, 100.25, "sha256:aa", modality="video")


def test_commit_reopen_read_only_and_metadata(tmp_path: Path, meta: Callable) -> None:
    path = tmp_path / "c.sqlite"
    catalog = Catalog.create(path)
    catalog.add_item("video", "v.mp4", meta(), [(0, 1)])
    catalog.set_meta(fingerprint="abc", dim=8, index_kinds={"music": "flat"})
    catalog.commit()
    catalog.add_item("video", "uncommitted.mp4", meta(), [(0, 1)])
    catalog.close()
    reader = Catalog.open(path)
    assert [i.path for i in reader.items()] == ["v.mp4"]
    assert reader.get_meta("index_kinds") == {"music": "flat"}
    assert reader.get_meta("missing", 5) == 5
    with pytest.raises(PermissionError):
        reader.add_item("video", "w.mp4", meta(), [(0, 1)])
    reader.close()
    assert sorted(os.listdir(tmp_path)) == ["c.sqlite"]  # no journal left behind


def test_garbage_and_foreign_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "junk.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreCorruptError, match="not a crossmodal catalog"):
        Catalog.open(tmp_path / "junk.sqlite")
    other = sqlite3.connect(tmp_path / "other.sqlite")
    other.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    other.commit()
    other.close()
    with pytest.raises(StoreCorruptError, match="table 'items' is missing"):
        Catalog.open(tmp_path / "other.sqlite")
    with pytest.raises(StoreCorruptError, match="missing"):
        Catalog.open(tmp_path / "nope.sqlite")


def test_replace_and_ids_after_reopening(tmp_path: Path, meta: Callable) -> None:
    path = tmp_path / "c.sqlite"
    catalog = Catalog.create(path)
    old, old_ids, replaced = catalog.add_item("music", "a.wav", meta(), [(0, 1), (1, 2)])
    assert replaced == []
    _new, new_ids, replaced = catalog.add_item(
        "music", "./a.wav", meta(size=7), [(0, 3)], replace=True
    )
    assert [(item.item_id, ids.tolist()) for item, ids in replaced] == [
        (old.item_id, old_ids.tolist())
    ]
    assert [i.size for i in catalog.items_by_path("a.wav")] == [7]
    catalog.commit()
    catalog.close()
    writer = Catalog.open(path, readonly=False)
    assert writer.add_item("video", "v.mp4", meta(), [(0, 1)]).vector_ids.tolist() == [
        new_ids[-1] + 1
    ]
    writer.close()
