"""Indexing media with a model and querying it, against a brute-force reference built
from the same model's embeddings of the same windows."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from crossmodal.apps.cli import main
from crossmodal.data import load_audio_windows, load_video_windows, read_manifest
from crossmodal.data.synth.corpus import SynthConfig, generate_corpus
from crossmodal.errors import CrossmodalError
from crossmodal.model import CrossModalModel, ModelConfig
from crossmodal.retrieval import IncompatibleStoreError, IndexStore
from crossmodal.retrieval.indexer import Indexer, library_files, model_path_in_store
from crossmodal.retrieval.recommender import Recommender


def _model(seed: int) -> CrossModalModel:
    torch.manual_seed(seed)
    return CrossModalModel.from_config(ModelConfig(embed_dim=32)).eval()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The manifest of six 4-second clips."""
    out = tmp_path_factory.mktemp("corpus")
    return generate_corpus(
        out, SynthConfig(clips=6, size=48, split=(0.5, 0.0, 0.5)), progress=False
    )


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 9-second clip: windows of 4 s at a 2 s hop start at 0, 2, 4 and 5 (the tail)."""
    out = tmp_path_factory.mktemp("long")
    manifest = generate_corpus(
        out, SynthConfig(clips=1, size=48, duration=9.0, split=(1.0, 0.0, 0.0)), progress=False
    )
    return read_manifest(manifest)[0].video


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.pt"
    _model(0).save(path)
    return path


@torch.no_grad()
def _reference_windows(
    model: CrossModalModel, path: Path, modality: str, starts: list[float]
) -> np.ndarray:
    window = model.audio_spec.seconds
    if modality == "video":
        emb = model.encode("video", load_video_windows(path, model.video_spec, starts, window))
    else:
        emb = model.encode("music", load_audio_windows(path, model.audio_spec, starts))
    return emb.numpy().astype(np.float64)


def test_windows_cover_long_files_and_reject_short_ones(long_clip: Path, corpus: Path) -> None:
    model = _model(0)
    indexer = Indexer(model, "unused", hop=2.0)
    duration, starts = indexer.windows_of(long_clip)
    assert duration == pytest.approx(9.0, abs=0.1)
    np.testing.assert_allclose(starts, [0.0, 2.0, 4.0, duration - 4.0], atol=1e-6)
    _, one = indexer.windows_of(read_manifest(corpus)[0].video)
    assert one.tolist() == [0.0]
    long_window = Indexer(_model(0), "unused")
    long_window.window = 20.0
    from crossmodal.data.errors import TooShortError

    with pytest.raises(TooShortError, match=r"shorter than the model's 20\.00 s window"):
        long_window.windows_of(long_clip)


def test_recommendations_match_brute_force_and_best_window(
    tmp_path: Path, corpus: Path, long_clip: Path
) -> None:
    model = _model(0)
    records = read_manifest(corpus)
    index_dir = tmp_path / "index"
    libraries = {
        "music": [*library_files(corpus, "music"), *library_files(long_clip.parent, "music")],
        "video": library_files(corpus, "video"),
    }
    report = Indexer(model, index_dir, hop=2.0).index(libraries)
    assert report.added == {"music": 7, "video": 6}
    assert report.failed == []
    rec = Recommender.load(index_dir)

    # Reference: mean of the query's window embeddings, cosine against every window of
    # every track, each track scored by its best window.
    query = records[0].video
    q = _reference_windows(model, query, "video", [0.0]).mean(axis=0)
    q /= np.linalg.norm(q)
    expected = []
    for entry in libraries["music"]:
        _, starts = Indexer(model, "unused", hop=2.0).windows_of(entry.path)
        sims = _reference_windows(model, entry.path, "music", list(starts)) @ q
        best = int(np.argmax(sims))
        expected.append((float(sims[best]), str(entry.path), float(starts[best])))
    expected.sort(key=lambda t: -t[0])
    matches = rec.recommend_music(query, k=7)
    assert [m.path for m in matches] == [p for _, p, _ in expected]
    np.testing.assert_allclose([m.score for m in matches], [s for s, _, _ in expected], atol=1e-4)
    for m, (_, _, start) in zip(matches, expected, strict=True):
        assert m.start == pytest.approx(start, abs=1e-6)
        assert m.end == pytest.approx(min(start + 4.0, m.duration), abs=0.05)
    assert [m.rank for m in matches] == list(range(1, 8))
    assert {m.label for m in matches[:6]} <= {r.label for r in records} | {None}

    found = rec.find_videos(records[1].music, k=3)
    assert len(found) == 3
    assert all(Path(m.path).suffix == ".mp4" for m in found)
    rec.close()


def test_incremental_update_change_and_prune(tmp_path: Path, corpus: Path) -> None:
    library = tmp_path / "library"
    shutil.copytree(corpus.parent / "videos", library)
    model = _model(0)
    index_dir = tmp_path / "index"
    first = Indexer(model, index_dir).index({"music": library_files(library, "music")})
    assert first.added["music"] == 6
    again = Indexer(model, index_dir).index({"music": library_files(library, "music")})
    assert again.added["music"] == 0
    assert again.unchanged["music"] == 6
    # a changed file is re-embedded: replace one clip's bytes by another clip's
    files = sorted(library.glob("*.mp4"))
    shutil.copyfile(files[1], files[0])
    os.utime(files[0], (1e9, 1e9))
    files[2].unlink()
    changed = Indexer(model, index_dir).index(
        {"music": library_files(library, "music")}, prune=True
    )
    assert changed.added["music"] == 1
    assert changed.unchanged["music"] == 4
    assert changed.removed["music"] == 1
    store = IndexStore.open(index_dir)
    assert store.info().items["music"] == 5
    store.close()


def test_index_from_another_model_is_refused_unless_rebuilt(tmp_path: Path, corpus: Path) -> None:
    index_dir = tmp_path / "index"
    Indexer(_model(0), index_dir).index({"video": library_files(corpus, "video")})
    other = _model(1)
    with pytest.raises(IncompatibleStoreError, match="rebuild"):
        Indexer(other, index_dir).index({"video": library_files(corpus, "video")})
    Indexer(other, index_dir).index({"video": library_files(corpus, "video")}, rebuild=True)
    rec = Recommender.load(index_dir)
    assert rec.model.fingerprint() == other.fingerprint()
    assert model_path_in_store(index_dir, other.fingerprint()).is_file()
    rec.close()


def test_interrupted_indexing_leaves_the_previous_index_readable(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _model(0)
    index_dir = tmp_path / "index"
    files = library_files(corpus, "music")
    Indexer(model, index_dir).index({"music": files[:2]})
    calls = {"n": 0}
    original = Indexer.embed_file

    def interrupted(self: Indexer, path: Path, modality: str) -> tuple:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, path, modality)

    monkeypatch.setattr(Indexer, "embed_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Indexer(model, index_dir).index({"music": files})
    monkeypatch.undo()
    rec = Recommender.load(index_dir)
    assert len(rec.find_videos(files[0].path, k=10)) == 0  # no video library was indexed
    assert rec.store.info().items["music"] == 2
    assert len(rec.recommend_music(files[0].path, k=10)) == 2
    rec.close()


def test_cli_index_lists_broken_files_and_answers_good_queries(
    tmp_path: Path, corpus: Path, model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    library = tmp_path / "my library"  # spaces in paths
    shutil.copytree(corpus.parent / "videos", library)
    (library / "notes.mp4").write_text("not a video")
    (library / "empty.mp4").write_bytes(b"")
    index_dir = tmp_path / "index"
    code = main(
        [
            "index",
            "--checkpoint",
            str(model_file),
            "--music",
            str(library),
            "--videos",
            str(library),
            "--out",
            str(index_dir),
            "--device",
            "cpu",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1  # some files failed
    assert "music: 6 embedded" in captured.out
    assert "video: 6 embedded" in captured.out
    assert "notes.mp4" in captured.err
    assert "empty.mp4" in captured.err

    good = str(library / "clip_000000.mp4")
    bad = str(library / "notes.mp4")
    code = main(
        [
            "-q",
            "recommend",
            good,
            bad,
            "--index",
            str(index_dir),
            "-k",
            "3",
            "--json",
            "--device",
            "cpu",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert out["failed"] == 1
    assert len(out["results"][good]) == 3
    assert set(out["results"][good][0]) >= {"rank", "path", "score", "start", "end", "label"}
    assert "error" in out["results"][bad]
    assert (
        main(["-q", "find-video", good, "--index", str(index_dir), "-k", "2", "--device", "cpu"])
        == 0
    )
    assert good in capsys.readouterr().out


def test_cli_errors_for_empty_folder_and_missing_index(
    tmp_path: Path, model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        main(
            [
                "index",
                "--checkpoint",
                str(model_file),
                "--music",
                str(empty),
                "--out",
                str(tmp_path / "i"),
            ]
        )
        == 2
    )
    assert "holds no audio or video files" in capsys.readouterr().err
    assert main(["recommend", str(empty), "--index", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
    from crossmodal.apps.cli.index import run

    with pytest.raises(CrossmodalError, match="nothing to index"):
        run(argparse.Namespace(music=None, videos=None))


def test_an_index_built_with_a_model_file_of_before_the_music_rename_still_opens(
    tmp_path: Path, corpus: Path
) -> None:
    # What the code of that time left behind: the store keyed by the fingerprint it
    # computed, and that model file, as written then, inside the index.
    legacy = Path(__file__).parents[1] / "fixtures" / "legacy_model"
    model = CrossModalModel.load(legacy / "model.pt")
    old_fingerprint = torch.load(legacy / "embeddings.pt", weights_only=True)["fingerprint"]
    index_dir = tmp_path / "index"
    indexer = Indexer(model, index_dir, hop=1.0)
    indexer.fingerprint = old_fingerprint
    indexer.index({"music": library_files(corpus, "music")})
    shutil.copyfile(legacy / "model.pt", model_path_in_store(index_dir, old_fingerprint))
    rec = Recommender.load(index_dir)
    assert rec.model.fingerprint() != old_fingerprint
    matches = rec.recommend_music(read_manifest(corpus)[0].video, k=3)
    assert len(matches) == 3
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
    rec.close()
