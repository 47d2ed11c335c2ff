"""`crossmodal index`, `recommend` and `find-video` on hostile inputs: one line, the right
exit code, and re-runs that change nothing publish nothing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

import crossmodal.retrieval.indexer as indexer_module
from crossmodal.apps.cli import main
from crossmodal.data import read_manifest
from crossmodal.data.errors import MediaError
from crossmodal.data.synth.corpus import SynthConfig, generate_corpus
from crossmodal.errors import CrossmodalError
from crossmodal.model import CrossModalModel, ModelConfig
from crossmodal.retrieval.indexer import Indexer
from crossmodal.retrieval.layout import read_pointer


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    return generate_corpus(
        out, SynthConfig(clips=3, size=48, split=(1.0, 0.0, 0.0)), progress=False
    )


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "model.pt"
    CrossModalModel.from_config(ModelConfig(embed_dim=32)).save(path)
    return path


def _index(model_file: Path, out: Path, *extra: str) -> int:
    return main(
        ["index", "--checkpoint", str(model_file), "--out", str(out), "--device", "cpu", *extra]
    )


def _lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def test_rerun_with_nothing_changed_publishes_nothing_and_known_bad_files_do_not_fail_it(
    tmp_path: Path, corpus: Path, model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    library = tmp_path / "library"
    shutil.copytree(corpus.parent / "videos", library)
    (library / "broken.mp4").write_bytes(b"not a video at all" * 10)
    out = tmp_path / "index"
    assert _index(model_file, out, "--music", str(library)) == 1  # new failure: listed
    first = capsys.readouterr()
    assert "broken.mp4" in first.err
    version = read_pointer(out).version
    assert _index(model_file, out, "--music", str(library)) == 0
    second = capsys.readouterr()
    assert "nothing changed" in second.out
    assert "music: 0 embedded, 3 unchanged" in second.out
    assert "failed in an earlier run" in second.err
    assert "broken.mp4" in second.err
    assert read_pointer(out).version == version
    assert sorted(os.listdir(out / "versions")) == [version]
    # A changed bad file is tried again (and fails again: exit code 1).
    (library / "broken.mp4").write_bytes(b"still not a video, but longer" * 10)
    assert _index(model_file, out, "--music", str(library)) == 1
    assert "could not be indexed" in capsys.readouterr().err


def test_find_video_needs_a_video_library(
    tmp_path: Path, corpus: Path, model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "index"
    assert _index(model_file, out, "--music", str(corpus.parent / "videos")) == 0
    capsys.readouterr()
    query = str(read_manifest(corpus)[0].video)
    code = main(["find-video", query, "--index", str(out), "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    (line,) = _lines(captured.err)
    assert "no video library" in line
    assert "--videos" in line


def test_non_utf8_file_names_fail_alone(
    tmp_path: Path, corpus: Path, model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    library = tmp_path / "library"
    shutil.copytree(corpus.parent / "videos", library)
    source = next(library.iterdir())
    odd = Path(os.fsdecode(bytes(library) + b"/caf\xe9 \x1b[31mred.mp4"))
    shutil.copy(source, odd)
    out = tmp_path / "index"
    assert _index(model_file, out, "--music", str(library)) == 1
    captured = capsys.readouterr()
    assert "music: 3 embedded" in captured.out
    assert "caf\\xe9" in captured.err  # shown escaped, never raw
    assert "\x1b" not in captured.err
    assert "not valid UTF-8" in captured.err
    code = main(["recommend", str(odd), "--index", str(out), "--device", "cpu", "-q"])
    captured = capsys.readouterr()
    assert code == 1
    (line,) = _lines(captured.err)
    assert "not valid UTF-8" in line


def test_hop_is_checked_against_the_window_before_anything_decodes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = CrossModalModel.from_config(ModelConfig(embed_dim=32))
    window = model.audio_spec.seconds
    with pytest.raises(CrossmodalError, match="at least"):
        Indexer(model, tmp_path / "i", hop=window / 100)
    assert Indexer(model, tmp_path / "i", hop=window / 64).hop == window / 64
    assert Indexer(model, tmp_path / "i").hop == window / 2


def test_windows_per_file_are_capped(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    model = CrossModalModel.from_config(ModelConfig(embed_dim=32))
    video = read_manifest(corpus)[0].video
    indexer = Indexer(model, tmp_path / "i", hop=model.audio_spec.seconds / 64)
    assert len(indexer.embed_file(video, "video").starts) >= 1  # below the cap: fine
    monkeypatch.setattr(indexer_module, "MAX_WINDOWS_PER_FILE", 0)
    with pytest.raises(MediaError, match="--hop"):
        indexer.embed_file(video, "video")
