"""A small self-contained HTML report builder (tables, images, audio/video players).

Media are referenced by paths relative to the report file, so the report folder can be
moved or zipped as a whole; small images can be embedded as base64 instead.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crossmodal.fileio import atomic_write_text

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.2rem; font-size: 0.92rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; vertical-align: middle; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.hit { background: #e3f6e3; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.8rem; margin: 1rem 0; }
img { max-width: 100%; }
audio { height: 2rem; vertical-align: middle; }
.muted { color: #777; }
"""


class HtmlReport:
    """Collects blocks and writes one HTML file."""

    def __init__(self, title: str, out_path: str | Path) -> None:
        self.title = title
        self.out_path = Path(out_path)
        self._blocks: list[str] = []

    # -- blocks ---------------------------------------------------------------------
    def heading(self, text: str, level: int = 2) -> None:
        self._blocks.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str, muted: bool = False) -> None:
        cls = ' class="muted"' if muted else ""
        self._blocks.append(f"<p{cls}>{html.escape(text)}</p>")

    def preformatted(self, text: str) -> None:
        self._blocks.append(f"<pre>{html.escape(text)}</pre>")

    def table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[Any]],
        row_classes: Sequence[str] | None = None,
    ) -> None:
        """Cells may be plain values (escaped; numbers right-aligned) or :class:`Raw`."""
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
        body = []
        for i, row in enumerate(rows):
            cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
            cells = "".join(self._cell(v) for v in row)
            body.append(f"<tr{cls}>{cells}</tr>")
        self._blocks.append(f"<table><tr>{head}</tr>{''.join(body)}</table>")

    def image(
        self, path: str | Path, alt: str = "", embed: bool = False, width: int | None = None
    ) -> None:
        self._blocks.append(self.image_html(path, alt, embed, width).html)

    def raw(self, fragment: str) -> None:
        """Insert trusted HTML produced by this module's helpers."""
        self._blocks.append(fragment)

    # -- inline helpers (return Raw for use inside tables) ----------------------------
    def image_html(
        self, path: str | Path, alt: str = "", embed: bool = False, width: int | None = None
    ) -> Raw:
        size = f' width="{width}"' if width else ""
        if embed:
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
            src = f"data:image/png;base64,{data}"
        else:
            src = self._rel(path)
        return Raw(f'<img src="{html.escape(src)}" alt="{html.escape(alt)}"{size}>')

    def audio_html(self, path: str | Path, start: float | None = None) -> Raw:
        # A media fragment (#t=start) makes the player start at the matched window.
        src = self._rel(path) + (f"#t={start:.2f}" if start is not None else "")
        return Raw(f'<audio controls preload="none" src="{html.escape(src)}"></audio>')

    def video_html(self, path: str | Path, width: int = 160) -> Raw:
        src = self._rel(path)
        return Raw(
            f'<video controls preload="none" width="{width}" src="{html.escape(src)}"></video>'
        )

    # -- output -----------------------------------------------------------------------
    def write(self) -> Path:
        doc = (
            "<!doctype html>\n<html><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head>"
            f"<body><h1>{html.escape(self.title)}</h1>\n"
            + "\n".join(self._blocks)
            + "\n</body></html>\n"
        )
        atomic_write_text(self.out_path, doc)
        return self.out_path

    def _rel(self, path: str | Path) -> str:
        rel = os.path.relpath(Path(path).resolve(), self.out_path.parent.resolve())
        return Path(rel).as_posix()

    @staticmethod
    def _cell(value: Any) -> str:
        if isinstance(value, Raw):
            return f"<td>{value.html}</td>"
        if isinstance(value, float):
            return f'<td class="num">{value:.3f}</td>'
        if isinstance(value, int) and not isinstance(value, bool):
            return f'<td class="num">{value}</td>'
        return f"<td>{html.escape(str(value))}</td>"


class Raw:
    """An HTML fragment that a table cell inserts without escaping."""

    def __init__(self, fragment: str) -> None:
        self.html = fragment
