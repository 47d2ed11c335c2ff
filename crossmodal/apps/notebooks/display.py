"""Small HTML builders for the notebooks: tables, and players that embed the media.

Everything returns an HTML string (wrap it in ``IPython.display.HTML``), so this module
needs neither IPython nor pandas. Players embed the bytes as ``data:`` URIs, so an
executed notebook plays its clips anywhere, without the cache folder.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

VIDEO_MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".mov": "video/mp4"}


def _cell(value: Any, floatfmt: str) -> str:
    if isinstance(value, float | np.floating):
        return format(float(value), floatfmt)
    return html.escape(str(value))


def html_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    floatfmt: str | Mapping[str, str] = ".3f",
) -> str:
    """An HTML table with one row per mapping; ``columns`` (default: the first row's
    keys) in order; floats formatted with ``floatfmt`` (one format, or a format per
    column, ".3f" for the others); text escaped; missing cells empty."""
    if not rows:
        return "<p><em>(no rows)</em></p>"
    columns = list(columns) if columns is not None else list(rows[0])
    formats = (
        {c: floatfmt.get(c, ".3f") for c in columns}
        if isinstance(floatfmt, Mapping)
        else dict.fromkeys(columns, floatfmt)
    )
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{_cell(row[c], formats[c]) if c in row else ''}</td>" for c in columns)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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


def audio_tag(wave: np.ndarray, sample_rate: int) -> str:
    """``<audio controls>`` playing ``wave`` (embedded as a WAV data URI)."""
    data = base64.b64encode(wav_bytes(wave, sample_rate)).decode("ascii")
    return f'<audio controls preload="none" src="data:audio/wav;base64,{data}"></audio>'


def soundtrack_tag(
    path: str | os.PathLike[str],
    start: float = 0.0,
    end: float | None = None,
    sample_rate: int = 16000,
) -> str:
    """``<audio controls>`` playing [start, end) s of a file's music (an audio file or a
    video's soundtrack), decoded by :func:`crossmodal.data.load_audio`."""
    from crossmodal.data import load_audio

    wave, offset = load_audio(path, sample_rate, start, end)
    first = max(0, round((start - offset) * sample_rate))
    last = None if end is None else max(first + 1, round((end - offset) * sample_rate))
    return audio_tag(wave[first:last], sample_rate)


def video_tag(path: str | os.PathLike[str], width: int = 160, muted: bool = False) -> str:
    """``<video controls>`` of a whole file, embedded as a data URI (keep files small)."""
    path = Path(path)
    mime = VIDEO_MIME.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"{path}: cannot embed {path.suffix or 'a file without suffix'}")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    mute = " muted" if muted else ""
    return (
        f'<video controls{mute} preload="metadata" width="{int(width)}" '
        f'src="data:{mime};base64,{data}"></video>'
    )


def card(player: str, caption: str) -> str:
    """A player (or any HTML) above an escaped caption; newlines in it become breaks."""
    text = "<br>".join(html.escape(line) for line in caption.splitlines())
    return (
        '<figure style="display:inline-block;margin:4px 10px 8px 0;vertical-align:top">'
        f'{player}<figcaption style="font-size:85%">{text}</figcaption></figure>'
    )


def row(cards: Sequence[str]) -> str:
    """Cards side by side, wrapping on narrow screens."""
    return '<div style="display:flex;flex-wrap:wrap">' + "".join(cards) + "</div>"
