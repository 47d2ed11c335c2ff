"""The TensorFlow-free checkpoint reader and converter (tools/musicnn_*.py).

The tests that re-convert need the musicnn wheel: set ``CROSSMODAL_MUSICNN_WHEEL`` to
``musicnn-0.1.0-py3-none-any.whl`` (``pip download --no-deps musicnn==0.1.0 -d DIR``);
without it they are skipped, saying so.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from crossmodal.encoders.music.musicnn import WEIGHTS_DIR, MusicnnEncoder
from tests.encoders.test_musicnn import FIXTURE, reference_logmel
from tools.musicnn_checkpoint import (
    TABLE_MAGIC,
    CheckpointFormatError,
    parse_protobuf,
    read_checkpoint,
    read_varint,
)
from tools.musicnn_convert import MODELS, convert_wheel

WHEEL = os.environ.get("CROSSMODAL_MUSICNN_WHEEL", "")
needs_wheel = pytest.mark.skipif(
    not Path(WHEEL).is_file(),
    reason="set CROSSMODAL_MUSICNN_WHEEL to the musicnn 0.1.0 wheel to re-convert "
    "(pip download --no-deps musicnn==0.1.0)",
)


def test_varint_and_message_decoding_follow_the_protobuf_encoding() -> None:
    # The protobuf encoding guide's examples: 150 → 96 01, 300 → ac 02.
    assert read_varint(bytes([0x96, 0x01]), 0) == (150, 2)
    assert read_varint(bytes([0xAC, 0x02, 0xFF]), 0) == (300, 2)
    # field 1 varint 150, field 2 bytes "ab", field 2 again, field 6 fixed32 7
    message = bytes([0x08, 0x96, 0x01, 0x12, 0x02, 0x61, 0x62, 0x12, 0x00, 0x35, 7, 0, 0, 0])
    assert parse_protobuf(message) == {1: [150], 2: [b"ab", b""], 6: [7]}
    with pytest.raises(CheckpointFormatError, match="truncated"):
        read_varint(bytes([0x80]), 0)
    with pytest.raises(CheckpointFormatError, match="wire type 3"):
        parse_protobuf(bytes([0x0B]))


def test_missing_or_foreign_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no tensor bundle"):
        read_checkpoint(tmp_path / "model")
    (tmp_path / "model.index").write_bytes(b"\0" * 40 + struct.pack("<Q", TABLE_MAGIC + 1))
    (tmp_path / "model.data-00000-of-00001").write_bytes(b"")
    with pytest.raises(CheckpointFormatError, match="magic"):
        read_checkpoint(tmp_path / "model")


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("musicnn")
    convert_wheel(Path(WHEEL), out)
    return out


@needs_wheel
@pytest.mark.slow
def test_reconverting_the_wheel_gives_the_shipped_weights(converted: Path) -> None:
    assert sorted(p.stem for p in converted.glob("*.safetensors")) == sorted(MODELS)
    for model in ("MSD_musicnn", "MTT_musicnn"):
        ours, shipped = (
            load_file(converted / f"{model}.safetensors"),
            load_file(WEIGHTS_DIR / f"{model}.safetensors"),
        )
        assert ours.keys() == shipped.keys()
        for key in ours:
            assert torch.equal(ours[key], shipped[key]), key


@needs_wheel
@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["msd", "mtt"])
def test_converted_vgg_matches_the_original_graph(converted: Path, dataset: str) -> None:
    encoder = MusicnnEncoder(dataset=dataset, architecture="vgg").eval()
    encoder.net.load_state_dict(load_file(converted / f"{dataset.upper()}_vgg.safetensors"))
    with np.load(FIXTURE) as data:
        reference = dict(data)
    with torch.no_grad():
        logits, embedding = encoder.outputs(reference_logmel(reference))
    key = f"{dataset.upper()}_vgg"
    expected = torch.from_numpy(reference[f"{key}/probabilities"])
    torch.testing.assert_close(torch.sigmoid(logits), expected, rtol=0, atol=1e-4)
    features = torch.from_numpy(reference[f"{key}/features"])
    torch.testing.assert_close(embedding, features, rtol=1e-4, atol=1e-4)
