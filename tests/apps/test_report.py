from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from crossmodal.apps.report import HtmlReport


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_report_escapes_text_and_links_media_relatively(tmp_path: Path) -> None:
    media = tmp_path / "media dir"
    media.mkdir()
    (media / "song.mp4").write_bytes(b"x")
    (media / "plot.png").write_bytes(b"\x89PNG fake")
    report = HtmlReport("Demo <run>", tmp_path / "out" / "report.html")
    report.heading("Results & more")
    report.table(
        ["query", "score", "player"],
        [["<b>x</b>", 0.51234, report.audio_html(media / "song.mp4", start=1.5)]],
        row_classes=["hit"],
    )
    report.image(media / "plot.png", alt="curves")
    report.image(media / "plot.png", alt="inline", embed=True)
    path = report.write()
    doc = path.read_text()
    parser = _Collector()
    parser.feed(doc)
    assert "<b>x</b>" in "".join(parser.text)  # shown as text, not markup
    assert "<b>" not in doc.replace("&lt;b&gt;", "")
    srcs = [a["src"] for t, a in parser.tags if t in ("audio", "img")]
    assert srcs[0] == "../media dir/song.mp4#t=1.50"
    assert srcs[1] == "../media dir/plot.png"
    assert srcs[2].startswith("data:image/png;base64,")
    assert (path.parent / "../media dir/song.mp4").resolve() == (media / "song.mp4").resolve()
    assert "0.512" in doc
    assert ("tr", {"class": "hit"}) in parser.tags
