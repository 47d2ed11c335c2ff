"""Whole-track tagging (crossmodal.tagging) and ``crossmodal tag`` on generated files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from crossmodal.apps.cli import main
from crossmodal.data.writer import write_media
from crossmodal.errors import CrossmodalError
from crossmodal.tagging import Tagger, TrackTags
from tests.encoders.test_musicnn import FIXTURE
from tools.musicnn_clips import SAMPLE_RATE, make_clip


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger("msd")


def test_track_tags_are_the_mean_of_the_original_window_tags(tagger: Tagger) -> None:
    with np.load(FIXTURE) as data:
        names, window_clip = list(data["clip_names"]), data["window_clip"]
        expected = data["MSD_musicnn/probabilities"]
    for index in (names.index("drums"), names.index("chord")):
        tags = tagger.tag_waveform(make_clip(str(names[index])))
        assert tags.num_windows == int((window_clip == index).sum())
        np.testing.assert_allclose(
            tags.probabilities, expected[window_clip == index].mean(axis=0), atol=1e-4, rtol=0
        )


def test_top_and_lookup() -> None:
    probabilities = np.full(50, 0.1, np.float32)
    probabilities[[0, 49, 47]] = [0.2, 0.7, 0.2]  # rock, happy, sad
    tags = TrackTags("msd", probabilities, 3)
    assert tags.top(3) == [
        ("happy", pytest.approx(0.7)),
        ("rock", pytest.approx(0.2)),
        ("sad", pytest.approx(0.2)),
    ]
    assert tags.probability("HAPPY") == pytest.approx(0.7)
    with pytest.raises(CrossmodalError, match=r"unknown tag 'angry'.*rock, pop"):
        tags.probability("angry")
    again = TrackTags.from_json(json.loads(json.dumps(tags.to_json())))
    assert again.model == "msd"
    assert again.num_windows == 3
    np.testing.assert_allclose(again.probabilities, probabilities, atol=1e-6)
    with pytest.raises(CrossmodalError, match="tagger model must be one of"):
        Tagger("vgg")


@pytest.fixture
def music_files(tmp_path: Path) -> dict[str, Path]:
    drums = tmp_path / "drums.wav"
    soundfile.write(drums, make_clip("drums"), SAMPLE_RATE)
    chord = tmp_path / "chord.flac"
    # at 44.1 kHz: the file is resampled to the tagger's 16 kHz on the way in
    chord_44k = np.interp(
        np.arange(round(len(make_clip("chord")) * 44100 / SAMPLE_RATE)) * SAMPLE_RATE / 44100,
        np.arange(len(make_clip("chord"))),
        make_clip("chord"),
    )
    soundfile.write(chord, chord_44k, 44100)
    video = write_media(
        tmp_path / "clip.mp4",
        np.zeros((12, 32, 32, 3), np.uint8),
        12.0,
        make_clip("drums")[:SAMPLE_RATE],
        SAMPLE_RATE,
    )
    bad = tmp_path / "notes.mp3"
    bad.write_text("not audio")
    return {"drums": drums, "chord": chord, "video": video, "bad": bad}


def test_cli_prints_top_tags_per_file(
    music_files: dict[str, Path], tagger: Tagger, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [music_files["drums"], music_files["video"]]
    assert main(["tag", "--top", "3", *map(str, files)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    expected = tagger.tag_file(music_files["drums"]).top(3)
    assert lines[0] == f"{files[0]}: " + ", ".join(f"{n} {p:.2f}" for n, p in expected)
    assert lines[1].startswith(f"{files[1]}: ")
    assert len(lines[1].split(", ")) == 3


def test_cli_json_mtt_and_bad_files(
    music_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    files = [music_files["chord"], music_files["bad"], music_files["chord"].with_name("gone.wav")]
    assert main(["tag", "--json", "--model", "mtt", "--top", "4", *map(str, files)]) == 2
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert [r["file"] for r in result] == list(map(str, files))
    first = result[0]
    assert first["model"] == "mtt"
    assert first["windows"] == 2
    probabilities = [t["probability"] for t in first["tags"]]
    assert len(probabilities) == 4
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(t["tag"] in Tagger("mtt").tag_names for t in first["tags"])
    assert "not a readable media file" in result[1]["error"]
    assert "no such file" in result[2]["error"]
    # one line per bad file on stderr, no traceback
    assert "Traceback" not in captured.err
    errors = [line for line in captured.err.splitlines() if "ERROR" in line]
    assert len(errors) == 2


def test_cli_rejects_a_bad_top(music_files: dict[str, Path]) -> None:
    assert main(["tag", "--top", "0", str(music_files["drums"])]) == 2
