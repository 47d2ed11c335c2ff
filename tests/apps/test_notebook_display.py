"""The one HTML builder (crossmodal.apps.report) as the notebooks use it: tables, and
players that embed their media."""

from __future__ import annotations

import base64
import io
import re
import wave
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from crossmodal.apps import report as nd


class TableParser(HTMLParser):
    """Rows of cell texts (header row first), read back by the stdlib parser."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse_table(html: str) -> list[list[str]]:
    parser = TableParser()
    parser.feed(html)
    return parser.rows


def data_uri_bytes(html: str, mime: str) -> bytes:
    match = re.search(rf'src="data:{re.escape(mime)};base64,([A-Za-z0-9+/=]+)"', html)
    assert match, html[:200]
    return base64.b64decode(match.group(1))


def test_html_table_formats_escapes_and_orders() -> None:
    rows = [
        {"name": "<b>a</b> & b", "score": 0.123456, "rank": 3, "np": np.float32(2.5)},
        {"name": "c", "score": 1.0, "np": np.float64(-0.25)},
    ]
    html = nd.html_table(rows, ["rank", "name", "score", "np"], floatfmt={"score": ".1%"})
    assert parse_table(html) == [
        ["rank", "name", "score", "np"],
        ["3", "<b>a</b> & b", "12.3%", "2.500"],
        ["", "c", "100.0%", "-0.250"],
    ]
    assert "<b>a</b>" not in html, "text is escaped"
    assert parse_table(nd.html_table(rows[:1], floatfmt=".1f"))[1] == [
        "<b>a</b> & b",
        "0.1",
        "3",
        "2.5",
    ]
    assert "no rows" in nd.html_table([])


def test_wav_bytes_read_back_by_the_stdlib_wave_module() -> None:
    rate = 8000
    t = np.arange(rate // 4) / rate
    signal = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), np.linspace(-1.5, 1.5, len(t))], axis=1)
    with wave.open(io.BytesIO(nd.wav_bytes(signal, rate))) as reader:
        assert (reader.getframerate(), reader.getnchannels(), reader.getsampwidth()) == (rate, 2, 2)
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2").reshape(-1, 2)
    expected = np.clip(signal, -1, 1)  # out-of-range samples are clipped, not wrapped
    np.testing.assert_allclose(pcm / 32767.0, expected, atol=2 / 32767)


@pytest.mark.parametrize(
    ("signal", "rate", "message"),
    [
        (np.zeros(0), 8000, "non-empty"),
        (np.zeros((2, 2, 2)), 8000, "waveform"),
        (np.zeros(8), 0, "sample_rate"),
    ],
)
def test_wav_bytes_refuses_bad_input(signal: np.ndarray, rate: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        nd.wav_bytes(signal, rate)


def test_audio_tag_embeds_the_wav() -> None:
    signal = np.full(160, 0.25, dtype=np.float32)
    html = nd.audio_tag(signal, 16000)
    assert html.startswith("<audio controls")
    assert data_uri_bytes(html, "audio/wav") == nd.wav_bytes(signal, 16000)


def test_soundtrack_tag_plays_the_requested_seconds(tmp_path: Path) -> None:
    soundfile = pytest.importorskip("soundfile")
    rate = 16000
    ramp = np.linspace(-0.9, 0.9, 2 * rate).astype(np.float32)  # each sample tells its time
    path = tmp_path / "ramp.wav"
    soundfile.write(path, ramp, rate, subtype="FLOAT")
    html = nd.soundtrack_tag(path, start=0.5, end=1.25, sample_rate=rate)
    with wave.open(io.BytesIO(data_uri_bytes(html, "audio/wav"))) as reader:
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2") / 32767.0
    np.testing.assert_allclose(pcm, ramp[rate // 2 : rate + rate // 4], atol=2 / 32767)


def test_video_tag_embeds_the_file_bytes(tmp_path: Path) -> None:
    path = tmp_path / "clip.MP4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    html = nd.video_tag(path, width=99, muted=True)
    assert data_uri_bytes(html, "video/mp4") == path.read_bytes()
    assert 'width="99"' in html
    assert " muted" in html
    assert " muted" not in nd.video_tag(path)
    with pytest.raises(ValueError, match=r"cannot embed \.avi"):
        nd.video_tag(tmp_path / "clip.avi")


def test_card_escapes_the_caption_and_row_keeps_the_cards() -> None:
    card = nd.card(nd.Html("<i>player</i>"), "1. <clip>\nsecond line")
    assert "<i>player</i>" in card
    assert "<i>" not in nd.card("<i>player</i>", "plain text is escaped")  # type: ignore[arg-type]
    assert "1. &lt;clip&gt;<br>second line" in card
    assert nd.row([card, card]).count("<figure") == 2
