"""The FastAPI application behind ``crossmodal serve``.

Routes: ``/`` music for a video, ``/videos`` videos for music, ``/library``; uploads go
to ``/api/music`` and ``/api/videos`` and come back as an HTML fragment (or a one-line
error as text); ``/api/dub`` writes the dubbed video. Media are served by catalog id
(``/media/{version}/{modality}/{id}``) or by a random query token, never by a path from
the request; there is no static folder and no directory listing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

# FastAPI reads the endpoints' annotations at run time: these names must be module globals.
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)

from crossmodal.apps.web import pages
from crossmodal.apps.web.script import APP_JS
from crossmodal.apps.web.state import (
    IndexHandle,
    Library,
    Query,
    QueryStore,
    Settings,
    UserError,
    new_token,
)

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; media-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
CHUNK = 1 << 20


def _media_error_sentence(name: str, err: Exception) -> str:
    from crossmodal.data.errors import CorruptMediaError, MediaError

    if isinstance(err, CorruptMediaError):
        return f"{name} is not a video or audio file this app can read."
    if isinstance(err, MediaError):
        return f"{name}: {err.reason.rstrip('.')}."
    return f"{name}: {str(err).splitlines()[0].rstrip('.')}."


def create_app(settings: Settings) -> Any:
    """The ASGI app for ``settings`` (the index opens now, so a bad folder fails here)."""
    handle = IndexHandle(settings)
    queries = QueryStore(settings.keep_queries, settings.query_ttl_s)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            queries.close()

    app = FastAPI(
        title="crossmodal", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.handle = handle
    app.state.queries = queries

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        # Refuse an oversized upload before reading it (multipart adds a little framing).
        if length and length.isdigit() and int(length) > settings.max_upload_bytes + 65536:
            response: Response = PlainTextResponse(
                f"The file is larger than the {settings.max_upload_mb:g} MB this server accepts.",
                status_code=413,
            )
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(UserError)
    async def user_error(_: Request, err: UserError) -> Response:
        return PlainTextResponse(str(err), status_code=err.status)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> Response:
        # The page shows one sentence; the details go to the server's log.
        log.exception("%s %s failed", request.method, request.url.path, exc_info=err)
        return PlainTextResponse(
            "Something went wrong on the server; its log has the details.", status_code=500
        )

    @app.exception_handler(404)
    async def not_found(_: Request, __: Exception) -> Response:
        return HTMLResponse(pages.not_found("Nothing here."), status_code=404)

    def html(fragment: str) -> HTMLResponse:
        return HTMLResponse(fragment)

    # -- queries ---------------------------------------------------------------------------
    def run_query(library: Library, query: Query) -> Query:
        from crossmodal.data.errors import MediaError
        from crossmodal.errors import CrossmodalError

        if query.matches:
            return query
        rec = library.recommender
        try:
            with handle.compute:
                started = time.perf_counter()
                answer = rec.query(query.path, query.modality, k=settings.k)
                query.matches, query.note = answer.matches, answer.padding
                handle.record(query.modality, query.seconds, time.perf_counter() - started)
        except (MediaError, CrossmodalError) as err:
            queries.discard(query)
            raise UserError(_media_error_sentence(query.name, err)) from err
        return queries.add(query)

    def results(library: Library, query: Query) -> str:
        src = f"/query/{query.token}"
        if query.modality == "video":
            return pages.music_results(library, query, src)
        return pages.video_results(library, query, src)

    def receive(upload: UploadFile, modality: str) -> Query:
        from crossmodal.data.errors import MediaError
        from crossmodal.data.media_info import probe

        name = Path(upload.filename or "upload").name
        path = queries.new_upload_path(Path(name).suffix)
        size = 0
        try:
            with path.open("wb") as sink:
                while chunk := upload.file.read(CHUNK):
                    size += len(chunk)
                    if size > settings.max_upload_bytes:
                        raise UserError(
                            f"{name} is larger than the {settings.max_upload_mb:g} MB this "
                            "server accepts.",
                            413,
                        )
                    sink.write(chunk)
            try:
                info = probe(path)
            except MediaError as err:
                raise UserError(_media_error_sentence(name, err)) from err
            if modality == "video" and not info.has_video:
                raise UserError(f"{name} has no video track: upload a video.")
            if modality == "music" and not info.has_audio:
                raise UserError(f"{name} has no audio track: upload music or a video with sound.")
            if info.duration and info.duration > settings.max_seconds:
                raise UserError(
                    f"{name} lasts {info.duration:.0f} s, longer than the "
                    f"{settings.max_seconds:g} s this server accepts."
                )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        version = handle.current().version
        seconds = float(info.duration or 0.0)
        return Query(new_token(), path, name, modality, version, owned=True, seconds=seconds)

    def picked(library: Library, modality: str, item_id: int) -> Query:
        item = library.item(modality, item_id)
        # A library video is a query for music, a library track a query for videos.
        return Query(
            new_token(),
            Path(item.path),
            Path(item.path).name,
            modality,
            library.version,
            owned=False,
            seconds=float(item.duration or 0.0),
        )

    @app.post("/api/music")
    def upload_video(file: UploadFile = File(...)) -> HTMLResponse:  # noqa: B008
        library = handle.current()
        return html(results(library, run_query(library, receive(file, "video"))))

    @app.post("/api/videos")
    def upload_music(file: UploadFile = File(...)) -> HTMLResponse:  # noqa: B008
        library = handle.current()
        return html(results(library, run_query(library, receive(file, "music"))))

    # The page's two steps: upload (byte progress), then query (with an estimate of how
    # long embedding takes, from the queries before it).
    @app.post("/api/upload")
    def upload_only(
        file: UploadFile = File(...),  # noqa: B008
        kind: Literal["video", "music"] = Form(...),
    ) -> JSONResponse:
        query = queries.add(receive(file, kind))
        estimate = handle.estimate(kind, query.seconds)
        return JSONResponse({"token": query.token, "seconds": query.seconds, "estimate": estimate})

    @app.post("/api/query")
    def query_uploaded(token: str = Form(...)) -> HTMLResponse:
        query = queries.get(token)
        library = handle.version(query.version)
        return html(results(library, run_query(library, query)))

    @app.post("/api/dub")
    def dub(
        token: str = Form(...), rank: int = Form(1), keep_original: float = Form(0.0)
    ) -> HTMLResponse:
        from crossmodal.data.errors import MediaError
        from crossmodal.errors import CrossmodalError
        from crossmodal.retrieval.dub import dub_recommended

        query = queries.get(token)
        if query.modality != "video" or not query.matches:
            raise UserError("find music for a video before dubbing it")
        library = handle.version(query.version)
        out = queries.new_upload_path(".mp4")
        started = time.perf_counter()
        try:
            with handle.compute:
                match, _ = dub_recommended(
                    library.recommender,
                    query.path,
                    out,
                    rank=rank,
                    keep_original=keep_original,
                    matches=query.matches,
                )
        except (MediaError, CrossmodalError) as err:
            out.unlink(missing_ok=True)
            raise UserError(_media_error_sentence(query.name, err)) from err
        if query.dubbed is not None:
            query.dubbed.unlink(missing_ok=True)
        query.dubbed = out
        seconds = time.perf_counter() - started
        name = f"{Path(query.name).stem}-dubbed.mp4"
        return html(pages.dub_result(f"/dubbed/{query.token}", name, seconds, match))

    # -- pages -----------------------------------------------------------------------------
    def query_page(modality: str, item_id: int | None) -> HTMLResponse:
        library = handle.current()
        fragment = None
        if item_id is not None:
            fragment = results(library, run_query(library, picked(library, modality, item_id)))
        return html(pages.query_page(library, settings, modality, fragment, item_id))

    @app.get("/")
    def music_page(video: int | None = None) -> HTMLResponse:
        return query_page("video", video)

    @app.get("/videos")
    def videos_page(track: int | None = None) -> HTMLResponse:
        return query_page("music", track)

    @app.get("/library")
    def library_page() -> HTMLResponse:
        return html(pages.library_page(handle.current()))

    @app.get("/app.js")
    def script() -> Response:
        return Response(APP_JS, media_type="text/javascript")

    # -- media -----------------------------------------------------------------------------
    @app.get("/media/{version}/{modality}/{item_id}")
    def media(version: str, modality: Literal["music", "video"], item_id: int) -> FileResponse:
        item = handle.version(version).item(modality, item_id)
        return FileResponse(item.path)

    @app.get("/query/{token}")
    def query_media(token: str) -> FileResponse:
        return FileResponse(queries.get(token).path)

    @app.get("/dubbed/{token}")
    def dubbed(token: str) -> FileResponse:
        query = queries.get(token)
        if query.dubbed is None or not query.dubbed.is_file():
            raise UserError("this video has not been dubbed yet", 404)
        return FileResponse(query.dubbed, media_type="video/mp4")

    return app
