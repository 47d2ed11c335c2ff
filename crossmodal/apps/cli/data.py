"""`crossmodal data …`: inspect media and manifests (check, probe, coupling)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from crossmodal.apps.cli._args import float_range, int_range, positive_int

if TYPE_CHECKING:
    from crossmodal.data import AudioSpec, VideoSpec


def _spec_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("clip spec (what training will ask of each clip)")
    group.add_argument(
        "--frames", type=int_range(1, 4096), default=8, help="frames per window (default: 8)"
    )
    group.add_argument(
        "--size",
        type=int_range(2, 8192),
        default=112,
        help="frame width and height in px (default: 112)",
    )
    group.add_argument(
        "--sample-rate",
        type=int_range(1000, 768_000),
        default=16000,
        help="audio sample rate in Hz (default: 16000)",
    )
    group.add_argument(
        "--seconds",
        type=float_range(0, 3600, low_inclusive=False),
        default=4.0,
        help="window length in seconds (default: 4)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="check manifests and media files",
        description="Inspect the media a manifest points to.",
    )
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    check = sub.add_parser(
        "check",
        help="list every problem file of a manifest with its reason",
        description=(
            "Probe and decode every clip of MANIFEST (a manifest.jsonl, a folder of videos or "
            "a folder of music) in full, the way training or indexing will, and list each "
            "problem file with its reason. A stream a little shorter than its header declares "
            "(up to max(1 s, 5 %%)) is a note, not a problem. Decoding runs in a child "
            "process, so a decoder crash or hang is reported, not fatal. Exit code 1 if "
            "there is any problem."
        ),
    )
    check.add_argument("manifest", metavar="MANIFEST")
    check.add_argument("--split", default=None, help="check only this split")
    check.add_argument(
        "--role",
        default="auto",
        choices=("auto", "pairs", "music", "video"),
        help=(
            "what the manifest is used for: pairs (training: video + music), music or video "
            "(an index library); auto: music when no row (or file of the folder) has a "
            "video, else pairs"
        ),
    )
    _spec_options(check)
    check.add_argument(
        "--timeout",
        type=float_range(0, low_inclusive=False),
        default=60.0,
        help="seconds per clip before a decode counts as hung",
    )
    check.add_argument(
        "--no-isolate", action="store_true", help="decode in this process (faster, not crash-proof)"
    )
    check.add_argument("--json", action="store_true", help="print problems as JSON lines")
    check.set_defaults(func=run_check)

    probe = sub.add_parser(
        "probe",
        help="show streams, duration, rates and sizes of media files",
        description="Read each FILE's header (nothing is decoded) and print what it holds.",
    )
    probe.add_argument("files", nargs="+", metavar="FILE")
    probe.add_argument("--json", action="store_true", help="print one JSON object per file")
    probe.set_defaults(func=run_probe)

    coupling = sub.add_parser(
        "coupling",
        help="measure how well hand-made envelopes match videos to their music",
        description=(
            "For each clip, correlate the video's motion envelope (frame differences) with "
            "its music's onset envelope (spectral flux) and rank every soundtrack of the "
            "gallery for every video and back. Far-above-chance R@k means the corpus couples "
            "pictures and music at instance level."
        ),
    )
    coupling.add_argument("manifest", metavar="MANIFEST")
    coupling.add_argument(
        "--split", default="test", help="split to use as the gallery (default: test)"
    )
    coupling.add_argument(
        "--limit", type=positive_int, default=200, help="at most this many clips (default: 200)"
    )
    coupling.add_argument(
        "--fps",
        type=float_range(0, 1000, low_inclusive=False),
        default=12.0,
        help="envelope rate (default: 12)",
    )
    coupling.set_defaults(func=run_coupling)


def _specs(args: argparse.Namespace) -> tuple[VideoSpec, AudioSpec]:
    from crossmodal.data import AudioSpec, VideoSpec

    return (
        VideoSpec(num_frames=args.frames, height=args.size, width=args.size),
        AudioSpec(sample_rate=args.sample_rate, seconds=args.seconds),
    )


def _role(args: argparse.Namespace) -> tuple[str, str]:
    """(role, why) for ``data check``: the one asked for, or the one the input implies."""
    from pathlib import Path

    from crossmodal.data import read_manifest
    from crossmodal.data.formats import scan_folder
    from crossmodal.data.manifest import MANIFEST_NAME

    if args.role != "auto":
        return args.role, "as asked"
    source = Path(args.manifest)
    if source.is_dir() and not (source / MANIFEST_NAME).is_file():
        if scan_folder(source, "video").files:
            return "pairs", "assumed: the folder holds videos; --role to change"
        return "music", "assumed: the folder holds no videos; --role to change"
    records = read_manifest(source)
    if all(r.video is None for r in records):
        return "music", "assumed: no row has a video; --role to change"
    return "pairs", "assumed: training pairs; --role music or video for an index library"


def run_check(args: argparse.Namespace) -> int:
    import logging

    from crossmodal.data import check_manifest
    from crossmodal.logging_utils import progress_bars

    video_spec, audio_spec = _specs(args)
    role, why = _role(args)
    logging.getLogger(__name__).info("checking %s for the %s role (%s)", args.manifest, role, why)
    count, found = check_manifest(
        args.manifest,
        video_spec,
        audio_spec,
        role=role,
        split=args.split,
        isolate=not args.no_isolate,
        timeout=args.timeout,
        progress=progress_bars(),
    )
    for problem in found:
        if args.json:
            print(json.dumps(problem.to_dict(), ensure_ascii=False))
        else:
            note = "note: " if problem.level == "note" else ""
            print(f"{note}{problem.path}: {problem.reason}  [clip {problem.clip_id}]")
    problems = [p for p in found if p.level != "note"]
    notes = len(found) - len(problems)
    files = len({p.path for p in problems})
    summary = (
        f"checked {count} clips ({role}): {len(problems)} problems in {files} files"
        if problems
        else f"checked {count} clips ({role}): no problems"
    )
    if notes:
        summary += f", {notes} notes"
    if not args.json:
        print(summary)
    return 1 if problems else 0


def run_probe(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from crossmodal.data import MediaError, probe

    failed = 0
    for name in args.files:
        try:
            info = probe(name)
        except MediaError as err:
            failed += 1
            print(
                json.dumps({"path": name, "error": err.reason})
                if args.json
                else f"{name}: {err.reason}"
            )
            continue
        if args.json:
            print(json.dumps(asdict(info), ensure_ascii=False))
            continue
        parts = [f"{info.duration:.3f} s" if info.duration else "duration unknown"]
        if info.has_video:
            fps = f"{info.fps:.3f} fps" if info.fps else "fps unknown"
            vfr = " (variable)" if info.variable_frame_rate else ""
            parts.append(
                f"video {info.video_codec} {info.width}x{info.height} {fps}{vfr}, {info.frame_count} frames"
            )
        else:
            parts.append("no video")
        if info.has_audio:
            parts.append(f"audio {info.audio_codec} {info.sample_rate} Hz, {info.channels} ch")
        else:
            parts.append("no audio")
        print(f"{name}: " + "; ".join(parts))
    return 1 if failed else 0


def run_coupling(args: argparse.Namespace) -> int:
    from crossmodal.data import read_manifest, select_split
    from crossmodal.data.synth import coupling_check

    records = select_split(read_manifest(args.manifest), args.split)[: args.limit]
    result = coupling_check(records, fps=args.fps)
    chance = result.chance()
    print(f"envelope-correlation retrieval on {result.n} clips (split {args.split})")
    print(f"{'direction':<16} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MedR':>6}")
    for name, m in (
        ("video → music", result.video_to_music),
        ("music → video", result.music_to_video),
    ):
        print(f"{name:<16} {m['R@1']:>6.3f} {m['R@5']:>6.3f} {m['R@10']:>6.3f} {m['MedR']:>6.1f}")
    print(
        f"{'chance':<16} {chance['R@1']:>6.3f} {5 / result.n:>6.3f} {chance['R@10']:>6.3f} {chance['MedR']:>6.1f}"
    )
    return 0
