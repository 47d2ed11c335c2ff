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


@pytest.mark.parametrize("modality", ["video", "music"])
def test_windows_cover_long_files_and_reject_short_ones(
    long_clip: Path, corpus: Path, tmp_path: Path, modality: str
) -> None:
    model = _model(0)
    indexer = Indexer(model, "unused", hop=2.0)
    embedded = indexer.embed_file(long_clip, modality)
    assert embedded.duration == pytest.approx(9.0, abs=0.1)
    np.testing.assert_allclose(embedded.starts, [0.0, 2.0, 4.0, embedded.duration - 4.0], atol=1e-4)
    # Streamed, batched embedding equals embedding the same windows decoded directly.
    reference = _reference_windows(model, long_clip, modality, list(embedded.starts))
    np.testing.assert_allclose(embedded.vectors, reference, atol=1e-4)
    one = indexer.embed_file(read_manifest(corpus)[0].video, modality)
    assert one.starts.tolist() == [0.0]
    assert not one.padded

    from crossmodal.data.errors import TooShortError
    from crossmodal.data.writer import write_media

    short = write_media(
        tmp_path / "short clip.mp4",
        np.full((12, 48, 48, 3), 90, dtype=np.uint8),
        12.0,
        np.zeros(16000, dtype=np.float32),
        16000,
    )
    with pytest.raises(TooShortError, match=r"lasts 1\.0\d+ s, shorter than the 4 s window"):
        indexer.embed_file(short, modality)
    padded = indexer.embed_file(short, modality, min_seconds=0.5)
    assert padded.padded
    assert padded.starts.tolist() == [0.0]
    with pytest.raises(TooShortError, match=r"shorter than the 2 s minimum"):
        indexer.embed_file(short, modality, min_seconds=2.0)


def test_workers_give_the_same_index_as_one_process(long_clip: Path, corpus: Path) -> None:
    model = _model(0)
    paths = [long_clip, *(r.video for r in read_manifest(corpus)[:3]), Path("missing.mp4")]
    for modality in ("music", "video"):
        alone = list(Indexer(model, "unused", hop=2.0).embed_files(paths, modality))
        shared = list(Indexer(model, "unused", hop=2.0, workers=2).embed_files(paths, modality))
        assert [i for i, _ in shared] == list(range(len(paths)))
        for (_, a), (_, b) in zip(alone, shared, strict=True):
            if isinstance(a, Exception):
                assert type(a) is type(b)
                assert str(a) == str(b)
                continue
            assert a.duration == b.duration
            np.testing.assert_array_equal(a.starts, b.starts)
            np.testing.assert_allclose(a.vectors, b.vectors, rtol=0, atol=1e-6)


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
        starts = Indexer(model, "unused", hop=2.0).embed_file(entry.path, "music").starts
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
    original = Indexer._encode

    def interrupted(self: Indexer, modality: str, inputs: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1  # one batch per (short) file: the third new file is interrupted
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, modality, inputs)

    monkeypatch.setattr(Indexer, "_encode", interrupted)
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


def test_music_only_manifest_uneven_streams_and_short_queries(
    tmp_path: Path, corpus: Path, model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The walk-through's files: a music library listed with `"video": null`, a 207-s-like
    track whose last window would overrun, soundtracks a second shorter than their video
    and the reverse, an .mpg, and 1-s queries."""
    from crossmodal.data.writer import write_media

    def frames(n: int) -> np.ndarray:
        return np.random.default_rng(n).integers(0, 255, (n, 48, 48, 3), dtype=np.uint8)

    def sound(seconds: float, rate: int = 16000) -> np.ndarray:
        t = np.arange(round(seconds * rate)) / rate
        return (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)

    media = tmp_path / "média"
    media.mkdir()
    write_media(media / "track.ogg", None, audio=sound(9.3, 48000), sample_rate=48000, audio_codec="libopus")  # fmt: skip
    write_media(media / "track two.m4a", None, audio=sound(7.0, 44100), sample_rate=44100)
    write_media(media / "audio short.mp4", frames(120), 12.0, sound(9.0))
    write_media(media / "video short.mp4", frames(108), 12.0, sound(10.0))
    write_media(media / "old.mpg", frames(240), 24.0, sound(10.0), video_codec="mpeg1video", audio_codec="mp2", container_format="mpeg")  # fmt: skip
    write_media(media / "one second.mp4", frames(12), 12.0, sound(1.0))
    rows = [
        {"id": "t1", "video": None, "audio": "média/track.ogg"},
        {"id": "t2", "audio": "média/track two.m4a"},
        {"id": "v1", "video": "média/audio short.mp4"},
        {"id": "v2", "video": "média/video short.mp4"},
        {"id": "v3", "video": "média/old.mpg"},
    ]
    manifest = tmp_path / "library.jsonl"
    manifest.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    index_dir = tmp_path / "index"
    code = main(
        [
            "-q",
            "index",
            "--checkpoint",
            str(model_file),
            "--music",
            str(manifest),
            "--videos",
            str(manifest),
            "--out",
            str(index_dir),
            "--device",
            "cpu",
            "--hop",
            "2",
            "--workers",
            "2",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "music: 5 embedded" in captured.out
    assert "video: 3 embedded" in captured.out
    assert "2 row(s) have no video" in captured.err

    store = IndexStore.open(index_dir)
    windows = {Path(item.path).name: item for item in store.snapshot.catalog.items("music")}
    store.close()
    # Windows stop at each decoded end: no file lost to the last window's arithmetic.
    assert windows["track.ogg"].duration == pytest.approx(9.3, abs=0.03)
    assert windows["audio short.mp4"].duration == pytest.approx(9.0, abs=0.1)

    queries = [str(media / n) for n in ("audio short.mp4", "video short.mp4", "old.mpg")]
    for command in ("recommend", "find-video"):
        code = main(
            ["-q", command, *queries, "--index", str(index_dir), "--json", "--device", "cpu"]
        )
        out = json.loads(capsys.readouterr().out)
        assert code == 0, out
        assert out["failed"] == 0
    short = str(media / "one second.mp4")
    code = main(["-q", "recommend", short, "--index", str(index_dir), "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0
    assert "note: video lasts 1.00 s, shorter than the model's 4 s window: padded" in out
    code = main(["-q", "find-video", short, "--index", str(index_dir), "--json", "--device", "cpu"])
    out = json.loads(capsys.readouterr().out)
    assert "padded with silence" in out["notes"][short]
    assert len(out["results"][short]) == 3
