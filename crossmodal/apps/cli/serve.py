"""`crossmodal serve`: the local web app."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="open the web app on an index: music for a video, videos for music, dubbing",
        description=(
            "Serve a local web app on INDEX: upload a video (or pick one from the index) to "
            "hear the music that fits it and get the video back with that music on it; "
            "upload music to see the videos that fit it; browse the library. Binds "
            "127.0.0.1 (this machine only) unless --host says otherwise. Needs the app "
            "extra: pip install 'crossmodal[app]'."
        ),
    )
    parser.add_argument("--index", required=True, help="index folder written by `crossmodal index`")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free)")
    parser.add_argument("-k", type=int, default=5, help="results per query (default 5)")
    parser.add_argument(
        "--max-upload-mb", type=float, default=200.0, help="largest upload in MB (default 200)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=600.0, help="longest upload in seconds (default 600)"
    )
    parser.add_argument("--device", default="auto")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from crossmodal.errors import CrossmodalError
    from crossmodal.training.trainer import resolve_device

    try:
        import uvicorn

        from crossmodal.apps.web.app import create_app
    except ImportError as err:
        raise CrossmodalError(
            f"the web app needs the app extra ({err.name} is missing): "
            "pip install 'crossmodal[app]'"
        ) from err
    from crossmodal.apps.web.state import Settings

    if args.k < 1 or args.max_upload_mb <= 0 or args.max_seconds <= 0:
        raise CrossmodalError("-k, --max-upload-mb and --max-seconds must be positive")
    settings = Settings(
        index_dir=Path(args.index),
        k=args.k,
        max_upload_mb=args.max_upload_mb,
        max_seconds=args.max_seconds,
        device=str(resolve_device(args.device)),
    )
    app = create_app(settings)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: other machines can reach this app", args.host)
    print(
        f"crossmodal: serving {settings.index_dir} on http://{args.host}:{args.port}/", flush=True
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
