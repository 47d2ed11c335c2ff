"""The web app without a browser (FastAPI's test client): escaping, media by catalog id
only, limits and one-sentence errors, uploads removed, one index version per request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from crossmodal.apps.web.app import create_app
from crossmodal.apps.web.state import Settings
from tests.apps.media_helpers import FILE_XSS, SCRIPT, build_index, make_video
from tests.apps.test_report import parsed


def assert_no_injection(doc: str) -> None:
    found = parsed(doc)
    scripts = [a for t, a in found.tags if t == "script"]
    assert all(a.get("src") == "/app.js" for a in scripts), scripts
    assert not [a for _, attrs in found.tags for a in attrs if a.startswith("on")]


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_index(tmp_path_factory.mktemp("web"), planted=True)[1]


@pytest.fixture
def client(index_dir: Path) -> Iterator[TestClient]:
    app = create_app(Settings(index_dir, k=3, max_upload_mb=1.0, max_seconds=8.0))
    with TestClient(app) as test_client:
        yield test_client


def _upload(client: TestClient, endpoint: str, path: Path, name: str | None = None) -> Any:
    with path.open("rb") as handle:
        return client.post(endpoint, files={"file": (name or path.name, handle)})


def test_pages_escape_planted_names_and_labels(client: TestClient, tmp_path: Path) -> None:
    library = client.get("/library")
    assert library.status_code == 200
    text = "".join(parsed(library.text).text)
    assert SCRIPT in text  # the label, shown as text
    assert FILE_XSS in text  # the file name, shown as text
    assert_no_injection(library.text)
    for page in ("/", "/videos"):
        assert_no_injection(client.get(page).text)
    video = make_video(tmp_path / "clip.mp4", 5.0)
    answer = _upload(client, "/api/music", video, name=f"{FILE_XSS}.mp4")
    assert answer.status_code == 200
    assert FILE_XSS in "".join(parsed(answer.text).text)
    assert_no_injection(answer.text)
    assert answer.headers["content-security-policy"].startswith("default-src 'self'")


def test_media_only_by_catalog_id(client: TestClient, index_dir: Path) -> None:
    from crossmodal.retrieval import IndexStore

    with IndexStore.open(index_dir) as store:
        version = store.info().version
        item = store.snapshot.items("music")[0]
    url = f"/media/{version}/music/{item.item_id}"
    answer = client.get(url)
    assert answer.status_code == 200
    assert answer.content == Path(item.path).read_bytes()
    part = client.get(url, headers={"Range": "bytes=10-19"})  # players seek with ranges
    assert part.status_code == 206
    assert part.content == Path(item.path).read_bytes()[10:20]
    for bad in (
        f"/media/{version}/music/99999",
        f"/media/{version}/other/{item.item_id}",
        f"/media/{version}/music/..%2F..%2Fetc%2Fpasswd",
        "/media/../../etc/passwd",
        f"/media/old-version/music/{item.item_id}",
        "/query/not-a-token",
        "/dubbed/not-a-token",
        "/corpus/",
        "/static/",
    ):
        response = client.get(bad)
        assert response.status_code in (404, 422), (bad, response.status_code)
        assert "root:" not in response.text


def test_bad_uploads_get_one_sentence(client: TestClient, tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("these are my notes, not a video\n")
    answer = _upload(client, "/api/music", fake)
    assert answer.status_code == 400
    assert answer.text == "notes.mp4 is not a video or audio file this app can read."

    silent = make_video(tmp_path / "silent.mp4", 5.0, tone_hz=None)
    answer = _upload(client, "/api/videos", silent)
    assert answer.status_code == 400
    assert answer.text == "silent.mp4 has no audio track: upload music or a video with sound."

    long = make_video(tmp_path / "long.mp4", 9.0)
    answer = _upload(client, "/api/music", long)
    assert answer.text == "long.mp4 lasts 9 s, longer than the 8 s this server accepts."

    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (2 << 20))
    answer = _upload(client, "/api/music", big)
    assert answer.status_code == 413
    assert answer.text == "The file is larger than the 1 MB this server accepts."

    short = make_video(tmp_path / "short.mp4", 2.0)  # under one window: padded, answered
    answer = _upload(client, "/api/music", short)
    assert answer.status_code == 200
    assert "padded with its last frame held" in answer.text
    kept = client.app.state.queries.files()  # type: ignore[attr-defined]
    assert len(kept) == 1  # only the answered upload so far; the refused ones are gone

    tiny = make_video(tmp_path / "tiny.mp4", 0.2)
    answer = _upload(client, "/api/music", tiny)
    assert answer.status_code == 400
    assert answer.text.startswith("tiny.mp4: ")
    assert "0.5" in answer.text  # the shortest query answered
    for response_text in (answer.text,):
        assert "Traceback" not in response_text
        assert "\n" not in response_text
    # Nothing of the refused uploads is kept (the answered one is, for dubbing).
    assert client.app.state.queries.files() == kept  # type: ignore[attr-defined]


def test_an_unexpected_failure_is_one_sentence_without_a_trace(
    index_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(Settings(index_dir))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom\nTraceback (most recent call last): ...")

    monkeypatch.setattr(app.state.handle, "current", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/library")
    assert answer.status_code == 500
    assert answer.text == "Something went wrong on the server; its log has the details."


def test_uploads_are_removed_after_use(index_dir: Path, tmp_path: Path) -> None:
    app = create_app(Settings(index_dir, k=2))
    app.state.queries.keep = 1
    video = make_video(tmp_path / "clip.mp4", 5.0)
    with TestClient(app) as client:
        folder = app.state.queries.root
        assert _upload(client, "/api/music", video).status_code == 200
        assert len(app.state.queries.files()) == 1
        assert _upload(client, "/api/music", video).status_code == 200
        assert len(app.state.queries.files()) == 1  # the first query's upload is gone
    assert not folder.exists()  # shutting down removes the rest


def test_readers_see_one_version_while_the_index_is_republished(
    index_dir: Path, tmp_path: Path
) -> None:
    import shutil

    import torch

    from crossmodal.model import CrossModalModel
    from crossmodal.retrieval import IndexStore
    from crossmodal.retrieval.indexer import Indexer, LibraryFile, model_path_in_store

    # A copy: re-publishing must not change the index the other tests read.
    index_dir = Path(shutil.copytree(index_dir, tmp_path / "index"))
    app = create_app(Settings(index_dir, k=3))
    client = TestClient(app)
    handle = app.state.handle
    before = handle.current()
    old_url = next(a["src"] for t, a in parsed(client.get("/library").text).tags if t == "audio")
    with IndexStore.open(index_dir) as store:
        fingerprint = store.info().fingerprint
    model = CrossModalModel.load(model_path_in_store(index_dir, fingerprint))
    extra = make_video(tmp_path / "extra.mp4", 5.0, seed=3)
    torch.manual_seed(0)
    Indexer(model, index_dir).index({"video": [LibraryFile(extra)]})

    after = handle.current()
    assert after.version != before.version
    assert before.recommender.store.snapshot.version == before.version  # still pinned
    assert len(after.items["video"]) == len(before.items["video"]) + 1
    assert "video: files / windows / index" in client.get("/library").text
    assert client.get(old_url.split("#")[0]).status_code == 200  # links of the old page
    picked = client.get("/", params={"video": next(iter(after.items["video"]))})
    assert picked.status_code == 200
    assert f"/media/{after.version}/music/" in picked.text


def test_long_libraries_are_listed_in_part(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crossmodal.apps.web import pages

    monkeypatch.setattr(pages, "LIST_LIMIT", 2)
    page = parsed(client.get("/library").text)
    text = " ".join(page.text)
    assert "Music (the first 2 of 7)" in text
    assert "Video (the first 2 of 7)" in text
    assert len([t for t, _ in page.tags if t == "audio"]) == 2
    assert len([t for t, _ in parsed(client.get("/").text).tags if t == "option"]) == 2


def test_upload_then_query_with_an_estimate_from_earlier_queries(
    client: TestClient, tmp_path: Path
) -> None:
    video = make_video(tmp_path / "clip.mp4", 6.0)

    def upload_only() -> dict[str, Any]:
        with video.open("rb") as handle:
            answer = client.post(
                "/api/upload", files={"file": ("clip.mp4", handle)}, data={"kind": "video"}
            )
        assert answer.status_code == 200, answer.text
        return answer.json()

    first = upload_only()
    assert first["seconds"] == pytest.approx(6.0, abs=0.1)
    assert first["estimate"] is None  # nothing measured yet
    early = client.post("/api/dub", data={"token": first["token"], "rank": "1"})
    assert early.text == "find music for a video before dubbing it"
    answer = client.post("/api/query", data={"token": first["token"]})
    assert answer.status_code == 200
    assert answer.text.count('class="track"') == 3
    second = upload_only()
    assert second["estimate"] > 0  # the first query's speed, scaled to this file's length
    assert client.post("/api/query", data={"token": "unknown"}).status_code == 404
    wrong_kind = client.post(
        "/api/upload", files={"file": ("clip.mp4", b"x")}, data={"kind": "text"}
    )
    assert wrong_kind.status_code == 422
