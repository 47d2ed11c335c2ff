"""The one HTML builder of the apps: the demo report, the notebooks and the web app.

Every piece of text is escaped unless it is :class:`Html` (markup this module built), so
ids, labels and file names from users can never inject markup: :func:`element` escapes
attribute values and text children, :func:`html_table` escapes cells, and
:meth:`HtmlReport.add` refuses plain strings.

Players: :func:`audio_player` / :func:`video_player` point at a URL (the web app's
media routes, a report's copied files) with ``preload="metadata"`` so durations show
before playing; :func:`audio_tag`, :func:`soundtrack_tag` and :func:`video_tag` embed the
bytes as ``data:`` URIs (notebooks: an executed notebook plays anywhere).
:class:`HtmlReport` writes a self-contained folder: ``index.html`` plus copies of every
medium it shows, so the folder opens anywhere once copied.
"""

from __future__ import annotations

import base64
import html
import io
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crossmodal.fileio import atomic_write_text

VIDEO_MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".mov": "video/mp4"}
VOID_ELEMENTS = frozenset({"br", "img", "input", "meta", "source", "link", "hr"})

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222;
       padding: 0 1rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1.2rem; font-size: 0.92rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; vertical-align: middle; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.hit { background: #e3f6e3; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.8rem; margin: 1rem 0; }
img { max-width: 100%; }
audio { min-width: 260px; vertical-align: middle; }
video { background: #000; }
.muted { color: #777; }
.error { color: #a00; font-weight: 600; }
figure { display: inline-block; margin: 4px 10px 8px 0; vertical-align: top; }
figcaption { font-size: 85%; }
.row { display: flex; flex-wrap: wrap; }
"""


class Html(str):
    """Markup this module built (or the caller vouches for): inserted without escaping."""

    __slots__ = ()


def escape(value: Any) -> Html:
    """``value`` as HTML text: :class:`Html` unchanged, anything else escaped."""
    return value if isinstance(value, Html) else Html(html.escape(str(value), quote=True))


def join(parts: Iterable[Any], sep: str = "") -> Html:
    """Parts escaped (unless :class:`Html`) and concatenated."""
    return Html(sep.join(escape(p) for p in parts))


def element(tag: str, /, *children: Any, **attrs: Any) -> Html:
    """``<tag attrs>children</tag>`` with every attribute value and text child escaped.

    Attribute names: a trailing underscore is dropped (``class_``), other underscores
    become hyphens (``data_rank``). ``True`` writes a bare attribute, ``None``/``False``
    omit it. Void elements (img, source, ...) take no children.
    """
    parts = [tag]
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        attr = key.rstrip("_").replace("_", "-")
        parts.append(attr if value is True else f'{attr}="{escape(value)}"')
    opening = f"<{' '.join(parts)}>"
    if tag in VOID_ELEMENTS:
        if children:
            raise ValueError(f"<{tag}> takes no children")
        return Html(opening)
    return Html(f"{opening}{join(children)}</{tag}>")


def _cell(value: Any, floatfmt: str) -> Html:
    if isinstance(value, Html):
        return element("td", value)
    if isinstance(value, float | np.floating):
        return element("td", format(float(value), floatfmt), class_="num")
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return element("td", str(value), class_="num")
    return element("td", "" if value is None else value)


def html_table(
    rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
    columns: Sequence[str] | None = None,
    floatfmt: str | Mapping[str, str] = ".3f",
    row_classes: Sequence[str] | None = None,
) -> Html:
    """A table of ``rows``: mappings (``columns`` default to the first row's keys;
    missing cells empty) or sequences in ``columns`` order. Floats are formatted with
    ``floatfmt`` (one format, or one per column with ".3f" for the rest) and numbers
    right-aligned; :class:`Html` cells are inserted as they are; all other text is
    escaped. ``row_classes``: a CSS class per row ("" for none)."""
    if not rows:
        return Html("<p><em>(no rows)</em></p>")
    if columns is None:
        first = rows[0]
        if not isinstance(first, Mapping):
            raise ValueError("rows given as sequences need columns")
        columns = list(first)
    formats = (
        {c: floatfmt.get(c, ".3f") for c in columns}
        if isinstance(floatfmt, Mapping)
        else dict.fromkeys(columns, floatfmt)
    )
    head = element("tr", *(element("th", c) for c in columns))
    body = []
    for i, row in enumerate(rows):
        cells = (
            [row.get(c) for c in columns]
            if isinstance(row, Mapping)
            else list(row) + [None] * (len(columns) - len(row))
        )
        tds = [_cell(v, formats[c]) for c, v in zip(columns, cells, strict=False)]
        css = row_classes[i] if row_classes and row_classes[i] else None
        body.append(element("tr", *tds, class_=css))
    return element("table", element("thead", head), element("tbody", *body))


# -- players that point at a URL ------------------------------------------------------------
def audio_player(src: str, *, start: float | None = None, **attrs: Any) -> Html:
    """``<audio controls preload="metadata">``; ``start`` appends a media fragment
    (``#t=12.50``) so playback begins at the matched window."""
    fragment = f"#t={start:.2f}" if start is not None else ""
    return element("audio", controls=True, preload="metadata", src=src + fragment, **attrs)


def video_player(
    src: str, *, poster: str | None = None, width: int = 240, muted: bool = False, **attrs: Any
) -> Html:
    """``<video controls preload="metadata">`` with an optional poster frame."""
    return element(
        "video",
        controls=True,
        preload="metadata",
        src=src,
        poster=poster,
        width=int(width),
        muted=muted,
        playsinline=True,
        **attrs,
    )


# -- players that embed their media --------------------------------------------------------
def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def wav_bytes(wave: np.ndarray, sample_rate: int) -> bytes:
    """A 16-bit PCM WAV file of a float waveform (S,) or (S, C) in [-1, 1] (clipped)."""
    import soundfile

    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim not in (1, 2) or wave.shape[0] == 0:
        raise ValueError(f"expected a non-empty (S,) or (S, C) waveform, got {wave.shape}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(wave, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def audio_tag(wave: np.ndarray, sample_rate: int) -> Html:
    """An audio player of ``wave``, embedded as a WAV data URI."""
    return audio_player(data_uri(wav_bytes(wave, sample_rate), "audio/wav"))


def soundtrack_tag(
    path: str | os.PathLike[str],
    start: float = 0.0,
    end: float | None = None,
    sample_rate: int = 16000,
) -> Html:
    """An embedded audio player of [start, end) s of a file's music (an audio file or a
    video's soundtrack), decoded by :func:`crossmodal.data.load_audio`."""
    from crossmodal.data import load_audio

    wave, offset = load_audio(path, sample_rate, start, end)
    first = max(0, round((start - offset) * sample_rate))
    last = None if end is None else max(first + 1, round((end - offset) * sample_rate))
    return audio_tag(wave[first:last], sample_rate)


def video_tag(path: str | os.PathLike[str], width: int = 160, muted: bool = False) -> Html:
    """A video player of a whole file, embedded as a data URI (keep files small)."""
    path = Path(path)
    mime = VIDEO_MIME.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"{path}: cannot embed {path.suffix or 'a file without suffix'}")
    return video_player(data_uri(path.read_bytes(), mime), width=width, muted=muted)


# -- layout ---------------------------------------------------------------------------------
def card(player: Html, caption: str) -> Html:
    """A player (or any markup) above an escaped caption; newlines in it become breaks."""
    lines = caption.splitlines()
    text = join([part for line in lines for part in (line, Html("<br>"))][:-1])
    return element("figure", player, element("figcaption", text))


def row(cards: Sequence[Html]) -> Html:
    """Cards side by side, wrapping on narrow screens."""
    return element("div", *cards, class_="row")


EMPTY = Html("")


def page(title: str, *blocks: Html, head: Html = EMPTY, heading: bool = True) -> Html:
    """A whole HTML document with the shared style."""
    return Html(
        "<!doctype html>\n"
        + element(
            "html",
            element(
                "head",
                Html('<meta charset="utf-8">'),
                Html('<meta name="viewport" content="width=device-width, initial-scale=1">'),
                element("title", title),
                element("style", Html(STYLE)),
                head,
            ),
            element("body", element("h1", title) if heading else EMPTY, *blocks),
            lang="en",
        )
        + "\n"
    )


class HtmlReport:
    """Collects blocks and writes a self-contained folder: ``index.html`` and, under
    ``media/``, a copy of every file it shows (links are relative and stay inside)."""

    def __init__(self, title: str, out_dir: str | os.PathLike[str]) -> None:
        self.title = title
        self.out_dir = Path(out_dir)
        self.media_dir = self.out_dir / "media"
        self._blocks: list[Html] = []
        self._copied: dict[Path, str] = {}

    @property
    def path(self) -> Path:
        return self.out_dir / "index.html"

    # -- blocks -----------------------------------------------------------------------------
    def heading(self, text: str, level: int = 2) -> None:
        self.add(element(f"h{level}", text))

    def paragraph(self, text: str, muted: bool = False) -> None:
        self.add(element("p", text, class_="muted" if muted else None))

    def table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[Any]],
        row_classes: Sequence[str] | None = None,
        floatfmt: str | Mapping[str, str] = ".3f",
    ) -> None:
        self.add(html_table(rows, headers, floatfmt, row_classes))

    def image(self, path: str | os.PathLike[str], alt: str = "", width: int | None = None) -> None:
        self.add(element("img", src=self.media(path), alt=alt, width=width))

    def add(self, fragment: Html) -> None:
        """Append markup built with this module (plain strings are refused: they could
        carry unescaped text)."""
        if not isinstance(fragment, Html):
            raise TypeError("HtmlReport.add takes Html built by crossmodal.apps.report")
        self._blocks.append(fragment)

    # -- media ------------------------------------------------------------------------------
    def media(self, path: str | os.PathLike[str]) -> str:
        """Copy ``path`` into the report's ``media/`` folder (once) and return its
        relative URL. Copies get numbered names, so no source name reaches the page."""
        source = Path(path).resolve()
        if source not in self._copied:
            self.media_dir.mkdir(parents=True, exist_ok=True)
            name = f"{len(self._copied):03d}{source.suffix.lower()}"
            shutil.copyfile(source, self.media_dir / name)
            self._copied[source] = f"media/{name}"
        return self._copied[source]

    def new_media_path(self, suffix: str) -> Path:
        """A fresh file name under ``media/`` for something generated (a poster frame);
        :meth:`media` of it then links it without a second copy."""
        self.media_dir.mkdir(parents=True, exist_ok=True)
        path = (self.media_dir / f"gen{len(self._copied):03d}{suffix}").resolve()
        self._copied[path] = f"media/{path.name}"
        return path

    # -- output -----------------------------------------------------------------------------
    def write(self) -> Path:
        atomic_write_text(self.path, page(self.title, *self._blocks))
        return self.path


def clear_folder(folder: Path) -> None:
    """Remove a previous report's media so a rewritten report holds only what it shows."""
    if (folder / "media").is_dir():
        shutil.rmtree(folder / "media")
