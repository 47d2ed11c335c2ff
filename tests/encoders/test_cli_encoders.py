"""`crossmodal encoders`."""

from __future__ import annotations

import json

import pytest

from crossmodal.apps.cli import main
from crossmodal.encoders import list_encoders


def test_lists_every_encoder_with_its_modality(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encoders"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list_encoders()
    assert main(["encoders", "--modality", "music", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in listed] == list_encoders("music")
    assert {e["modality"] for e in listed} == {"music"}
    # the option's former word for music still selects the same encoders
    assert main(["encoders", "--modality", "audio", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == listed


def test_describes_one_encoder_with_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["encoders", "audio_tiny", "--set", "n_mels=32", "--set", "pool=mean", "--json"]) == 0
    )
    info = json.loads(capsys.readouterr().out)
    assert info["input_shape"] == ["B", 32, 201]
    assert info["spec"]["n_mels"] == 32
    assert info["output_dim"] == 32
    assert info["options"]["hop_length"] == 320
    assert main(["encoders", "video_tiny"]) == 0
    out = capsys.readouterr().out
    assert "input   (B, C, T, H, W) = (B, 3, 48, 48, 48)" in out
    assert "output  (B, 768)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["encoders", "nope"], "unknown encoder 'nope'"),
        (["encoders", "video_tiny", "--set", "frames=3"], "no option 'frames'"),
        (["encoders", "video_tiny", "--set", "size=30"], "size must be a multiple of 4"),
        (["encoders", "video_tiny", "--set", "size"], "--set takes KEY=VALUE"),
    ],
)
def test_bad_requests_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err
