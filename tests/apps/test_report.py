"""The one HTML builder: escaping everywhere, tables, players and the self-contained
report folder."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from crossmodal.apps.report import (
    Html,
    HtmlReport,
    audio_player,
    element,
    html_table,
    page,
    video_player,
)
from tests.apps.media_helpers import FILE_XSS, SCRIPT


class Collector(HTMLParser):
    """Start tags with attributes, and text, as the stdlib parser reads them back."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(doc: str) -> Collector:
    parser = Collector()
    parser.feed(doc)
    return parser


def test_element_escapes_text_and_attributes_but_not_built_markup() -> None:
    built = element("a", SCRIPT, element("b", "x & y"), href='"/><script>', class_="c", data_id=1)
    parser = parsed(built)
    assert [t for t, _ in parser.tags] == ["a", "b"]  # no <script> element
    assert parser.tags[0][1] == {"href": '"/><script>', "class": "c", "data-id": "1"}
    assert "".join(parser.text) == SCRIPT + "x & y"
    assert element("video", controls=True, muted=False, poster=None) == "<video controls></video>"
    with pytest.raises(ValueError, match="no children"):
        element("img", "text")


def test_table_formats_per_column_and_marks_rows() -> None:
    table = html_table(
        [[SCRIPT, 101.0, 0.51234, 3, None, Html("<i>p</i>")]],
        ["name", "MedR", "R@1", "rank", "blank", "player"],
        floatfmt={"MedR": ".1f"},
        row_classes=["hit"],
    )
    parser = parsed(table)
    assert "script" not in [t for t, _ in parser.tags]
    assert "i" in [t for t, _ in parser.tags]
    assert ("tr", {"class": "hit"}) in parser.tags
    cells = "|".join(parser.text)
    assert f"{SCRIPT}|101.0|0.512|3|p" in cells


def test_players_preload_metadata_and_start_at_the_window() -> None:
    audio = parsed(audio_player("media/a.wav", start=12.5)).tags[0]
    assert audio == (
        "audio",
        {"controls": None, "preload": "metadata", "src": "media/a.wav#t=12.50"},
    )
    video = dict(parsed(video_player("v.mp4", poster="p.png", width=200)).tags[0][1])
    assert video["preload"] == "metadata"
    assert video["poster"] == "p.png"
    assert "controls" in video


def test_report_is_a_self_contained_folder_with_escaped_names(tmp_path: Path) -> None:
    media = tmp_path / "corpus" / f"{FILE_XSS}.d"
    media.mkdir(parents=True)
    song = media / f"{FILE_XSS}.wav"
    song.write_bytes(b"RIFF fake")
    plot = media / "plot.png"
    plot.write_bytes(b"\x89PNG fake")
    report = HtmlReport(f"Demo {SCRIPT}", tmp_path / "out" / "report")
    report.heading(SCRIPT)
    report.paragraph(SCRIPT)
    report.table(["query", "player"], [[SCRIPT, audio_player(report.media(song), start=1.5)]])
    report.image(plot, alt=SCRIPT)
    report.image(plot)  # the same file is copied once
    with pytest.raises(TypeError, match="Html"):
        report.add(f"<p>{SCRIPT}</p>")  # type: ignore[arg-type]
    path = report.write()

    doc = path.read_text()
    parser = parsed(doc)
    assert "script" not in [t for t, _ in parser.tags]
    assert SCRIPT in "".join(parser.text)
    assert "onerror" not in doc  # the source file names never reach the page
    sources = [a["src"] for t, a in parser.tags if t in ("audio", "img")]
    assert sources == ["media/000.wav#t=1.50", "media/001.png", "media/001.png"]
    # Every link stays inside the folder: moving it elsewhere keeps the media.
    moved = tmp_path / "elsewhere"
    path.parent.rename(moved)
    for src in sources:
        assert (moved / src.split("#")[0]).is_file()
    assert (moved / "media" / "000.wav").read_bytes() == b"RIFF fake"
    assert sorted(p.name for p in (moved / "media").iterdir()) == ["000.wav", "001.png"]


def test_page_escapes_its_title() -> None:
    doc = page(SCRIPT, element("p", "body"))
    assert "<script>" not in doc
    assert doc.startswith("<!doctype html>")
