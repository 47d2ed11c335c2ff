"""The web app's pages and result fragments, built with the apps' one HTML builder
(:mod:`crossmodal.apps.report`), so every id, label and file name is escaped."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from crossmodal.apps.report import (
    Html,
    audio_player,
    element,
    html_table,
    join,
    page,
    video_player,
)

if TYPE_CHECKING:
    from crossmodal.apps.web.state import Library, Query, Settings
    from crossmodal.retrieval.recommender import Match
    from crossmodal.retrieval.records import Item

# A page lists at most this many items of a modality (a library can hold 100,000).
LIST_LIMIT = 500
NAV = (("/", "Music for a video"), ("/videos", "Videos for music"), ("/library", "Library"))
APP_CSS = """
nav a { margin-right: 1.2rem; } nav a.active { font-weight: 700; }
form { margin: 0.6rem 0; } #status { color: #246; min-height: 1.3em; }
.panes { display: flex; gap: 2rem; flex-wrap: wrap; align-items: flex-start; }
"""


def media_url(version: str, item: Item) -> str:
    return f"/media/{version}/{item.modality}/{item.item_id}"


def _layout(title: str, path: str, *blocks: Html) -> Html:
    links = [
        element("a", label, href=href, class_="active" if href == path else None)
        for href, label in NAV
    ]
    head = join([element("style", Html(APP_CSS)), element("script", src="/app.js", defer=True)])
    return page(f"crossmodal — {title}", element("nav", *links), *blocks, head=head)


def _name(path: str) -> str:
    return Path(path).name


def _upload_form(kind: str, accept: str, what: str, settings: Settings) -> Html:
    return element(
        "form",
        element(
            "label", f"Upload {what}: ", element("input", type="file", name="file", accept=accept)
        ),
        " ",
        element("button", "Find matches", type="submit"),
        element(
            "span",
            f" (up to {settings.max_upload_mb:g} MB and {settings.max_seconds:g} s)",
            class_="muted",
        ),
        id="upload-form",
        data_kind=kind,
        data_max_bytes=settings.max_upload_bytes,
        method="post",
        enctype="multipart/form-data",
    )


def _pick_form(
    library: Library, modality: str, param: str, action: str, picked: int | None
) -> Html:
    options = [
        element(
            "option",
            f"{_name(item.path)}" + (f" [{item.label}]" if item.label else ""),
            value=item_id,
            selected=item_id == picked,
        )
        for item_id, item in sorted(library.items.get(modality, {}).items())[:LIST_LIMIT]
    ]
    return element(
        "form",
        element("label", "or pick one from the library: ", element("select", *options, name=param)),
        " ",
        element("button", "Find matches", type="submit"),
        method="get",
        action=action,
        id="pick-form",
    )


def _status_area(results: Html | None) -> Html:
    return join(
        [
            element(
                "p",
                element("span", id="status", role="status"),
                " ",
                element("progress", id="progress", hidden=True),
            ),
            element("p", id="error", class_="error", role="alert"),
            element("div", results or Html(""), id="results"),
        ]
    )


# Per query modality: page path, title, intro, accepted files, upload noun, the library
# picker's parameter.
QUERY_PAGES = {
    "video": (
        "/",
        "music for a video",
        "Drop in a video: the index's music library is ranked by how well each track fits it.",
        "video/*,.mp4,.mkv,.webm,.mov",
        "a video",
        "video",
    ),
    "music": (
        "/videos",
        "videos for music",
        "Give a piece of music: the index's videos are ranked by how well each fits it.",
        "audio/*,video/*",
        "a music file",
        "track",
    ),
}


def query_page(
    library: Library,
    settings: Settings,
    modality: str,
    results: Html | None,
    picked: int | None,
) -> Html:
    """The page that takes a query of ``modality`` (upload or library pick) and shows
    its ``results`` fragment when there is one."""
    path, title, intro, accept, noun, param = QUERY_PAGES[modality]
    return _layout(
        title,
        path,
        element("p", intro),
        _upload_form(modality, accept, noun, settings),
        _pick_form(library, modality, param, path, picked),
        _status_area(results),
    )


def _window(match: Match) -> str:
    return f"{match.start:.1f}–{match.end:.1f} s"


def music_results(library: Library, query: Query, query_src: str) -> Html:
    """The query video and its top tracks, each with a player at its matched window and
    a button that dubs the video with it."""
    rows = []
    for match in query.matches:
        item = library.item_of("music", match)
        rows.append(
            [
                match.rank,
                _name(match.path),
                match.label or "",
                match.score,
                _window(match),
                audio_player(media_url(library.version, item), start=match.start, class_="track"),
                element(
                    "button",
                    "Dub the video with it",
                    type="button",
                    class_="dub",
                    data_token=query.token,
                    data_rank=match.rank,
                ),
            ]
        )
    table = html_table(rows, ["rank", "track", "mood", "score", "matched window", "listen", ""])
    dub_controls = element(
        "p",
        element(
            "label",
            "Keep the video's own sound at ",
            element("input", type="number", id="keep", min=0, max=1, step=0.1, value=0),
            " (0 = music only, 1 = full)",
        ),
    )
    return join(
        [
            element("h2", f"Music for {query.name}"),
            element("p", f"Note: {query.note}.", class_="note") if query.note else "",
            element(
                "div",
                element("div", video_player(query_src, width=320, class_="query")),
                element("div", table, dub_controls, element("div", id="dub-result")),
                class_="panes",
            ),
        ]
    )


def video_results(library: Library, query: Query, query_src: str) -> Html:
    """The query music and its top videos with players."""
    rows = [
        [
            match.rank,
            _name(match.path),
            match.label or "",
            match.score,
            _window(match),
            video_player(
                media_url(library.version, library.item_of("video", match))
                + f"#t={match.start:.2f}",
                width=200,
                class_="found",
            ),
        ]
        for match in query.matches
    ]
    return join(
        [
            element("h2", f"Videos for {query.name}"),
            element("p", f"Note: {query.note}.", class_="note") if query.note else "",
            element("p", audio_player(query_src, class_="query")),
            html_table(rows, ["rank", "video", "mood", "score", "matched window", "watch"]),
        ]
    )


def dub_result(url: str, name: str, seconds: float, match: Match) -> Html:
    return join(
        [
            element(
                "p",
                f"Dubbed with {_name(match.path)} from {match.start:.1f} s in {seconds:.1f} s: ",
                element("a", "download the video", href=url, download=name, id="dub-download"),
            ),
            video_player(url, width=320, class_="dubbed"),
        ]
    )


def library_page(library: Library) -> Html:
    info = library.info
    summary = html_table(
        [
            ["index folder", info.root],
            ["version", info.version],
            ["model fingerprint", info.fingerprint],
            ["embedding dimension", info.dim],
            ["built by crossmodal", info.crossmodal_version],
            ["updated", info.updated],
            *(
                [
                    f"{m}: files / windows / index",
                    f"{info.items.get(m, 0)} / {info.windows.get(m, 0)} / {info.index_kinds.get(m, '')}",
                ]
                for m in sorted(library.items)
            ),
        ],
        ["", "value"],
    )
    blocks = [element("h2", "Index"), summary]
    for modality in sorted(library.items):
        rows = []
        total = len(library.items[modality])
        for item_id, item in sorted(library.items[modality].items())[:LIST_LIMIT]:
            src = media_url(library.version, item)
            player = audio_player(src) if modality == "music" else video_player(src, width=160)
            rows.append(
                [
                    item_id,
                    _name(item.path),
                    item.label or "",
                    None if item.duration is None else float(item.duration),
                    player,
                ]
            )
        shown = f"{total}" if total == len(rows) else f"the first {len(rows)} of {total}"
        blocks += [
            element("h2", f"{modality.capitalize()} ({shown})"),
            html_table(rows, ["id", "file", "label", "seconds", "play"], floatfmt=".1f"),
        ]
    return _layout("library", "/library", *blocks)


def not_found(message: str) -> Html:
    return _layout("not found", "", element("p", message, class_="error"))
