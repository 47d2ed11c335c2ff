"""The validation carve: deterministic, grouped by track (no leak), sized as asked, stored
in the run folder and reused by a resumed run."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from crossmodal.data import read_manifest, write_manifest
from crossmodal.data.carve import (
    CARVE_FILE,
    apply_carve,
    carve_ids,
    load_carve,
    with_val_split,
)
from crossmodal.data.manifest import ClipRecord
from crossmodal.errors import CrossmodalError
from crossmodal.training import Trainer
from crossmodal.training.config import TrainConfig

MakeConfig = Callable[..., TrainConfig]


def records_of(n_tracks: int, clips_per_track: Callable[[int], int], split: str | None = "train"):
    return [
        ClipRecord(id=f"c{t:03d}_{k}", video=Path("v.mp4"), track_id=f"t{t:03d}", split=split)
        for t in range(n_tracks)
        for k in range(clips_per_track(t))
    ]


def carve(records, fraction=0.1, max_clips=300, seed=0):
    return with_val_split(
        records,
        train_split="train",
        val_split="val",
        fraction=fraction,
        max_clips=max_clips,
        seed=seed,
        run_dir=None,
    )


def test_the_carve_is_a_function_of_the_seed_not_of_the_order() -> None:
    records = records_of(200, lambda t: 1 + t % 3)
    shuffled = list(records)
    random.Random(1).shuffle(shuffled)
    first = carve_ids(records, 0.1, 300, seed=0)
    assert carve_ids(shuffled, 0.1, 300, seed=0) == first
    assert carve_ids(records, 0.1, 300, seed=1) != first


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_track_is_on_both_sides_and_the_size_is_about_the_fraction(seed: int) -> None:
    records = records_of(300, lambda t: 1 + t % 4)  # 750 clips, 1 to 4 per track
    out = carve(records, seed=seed)
    val = [r for r in out if r.split == "val"]
    train = [r for r in out if r.split == "train"]
    assert len(val) + len(train) == len(records)
    assert not {r.track_id for r in val} & {r.track_id for r in train}
    # whole tracks until at least 10 % (75 clips): overshoot by less than one track
    assert 75 <= len(val) < 75 + 4


def test_the_carve_is_capped_and_leaves_a_track_to_train_on() -> None:
    records = records_of(5000, lambda t: 1)
    assert len(carve_ids(records, 0.1, 300, seed=0)) == 300
    few = records_of(5, lambda t: 10)
    ids = carve_ids(few, 0.9, 300, seed=0)
    assert len(ids) == 40  # four of the five tracks, never all of them
    assert carve_ids(records_of(4, lambda t: 10), 0.5, 300, seed=0) == []


def test_a_manifest_with_a_val_split_is_left_as_it_is() -> None:
    records = records_of(50, lambda t: 1)
    records[0] = replace(records[0], split="val")
    assert carve(records) == records


def test_a_manifest_without_splits_gets_train_and_val() -> None:
    records = records_of(100, lambda t: 2, split=None)
    out = carve(records)
    assert {r.split for r in out} == {"train", "val"}
    assert sum(r.split == "val" for r in out) == 20
    # test clips of a split manifest stay where they are
    split = [*records_of(100, lambda t: 1), ClipRecord(id="x", video=Path("v.mp4"), split="test")]
    assert next(r for r in carve(split) if r.id == "x").split == "test"


def test_apply_carve_matches_the_ids() -> None:
    records = records_of(10, lambda t: 1, split=None)
    out = apply_carve(records, ["c003_0"], "train", "val")
    assert [r.id for r in out if r.split == "val"] == ["c003_0"]


def test_a_bad_carve_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / CARVE_FILE).write_text("{not json")
    with pytest.raises(CrossmodalError, match="not a carve file"):
        load_carve(tmp_path)


def test_training_carves_stores_and_reuses_the_split(
    make_config: MakeConfig, corpus: Path, tmp_path: Path
) -> None:
    records = [replace(r, split=None) for r in read_manifest(corpus)]
    manifest = write_manifest(records, corpus.parent / "unsplit.jsonl")
    cfg = make_config(epochs=1, **{"data.manifest": str(manifest), "data.val_fraction": 0.25})
    trainer = Trainer(cfg, tmp_path)
    stored = json.loads((tmp_path / CARVE_FILE).read_text())["val"]
    assert len(stored) == 8  # a quarter of 32 one-clip tracks
    assert sorted(trainer.val_set.records[i].id for i in range(len(trainer.val_set))) == stored
    assert len(trainer.train_set) == 24
    result = trainer.fit()
    assert result.val is not None
    assert result.val["gallery_size"] == 8
    # a resumed run reads the stored carve even when the seed would carve another
    (tmp_path / CARVE_FILE).write_text(json.dumps({"seed": 0, "val": stored[:4]}))
    cfg = make_config(epochs=2, **{"data.manifest": str(manifest), "data.val_fraction": 0.25})
    resumed = Trainer(cfg, tmp_path, resume=True)
    assert len(resumed.val_set) == 4
    assert len(resumed.train_set) == 28
