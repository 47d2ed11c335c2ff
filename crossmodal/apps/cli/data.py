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
            "Probe and decode every clip of MANIFEST (a manifest.jsonl or a folder of videos) "
            "the way training will, and list each problem file with its reason. Decoding runs "
            "in a child process, so a decoder crash or hang is reported, not fatal. Exit code 1 "
            "if there is any problem."
        ),
    )
    check.add_argument("manifest", metavar="MANIFEST")
    check.add_argument("--split", default=None, help="check only this split")
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


def run_check(args: argparse.Namespace) -> int:
    from crossmodal.data import check_manifest
    from crossmodal.logging_utils import progress_bars

    video_spec, audio_spec = _specs(args)
    count, problems = check_manifest(
        args.manifest,
        video_spec,
        audio_spec,
        split=args.split,
        isolate=not args.no_isolate,
        timeout=args.timeout,
        progress=progress_bars(),
    )
    for problem in problems:
        if args.json:
            print(json.dumps(problem.to_dict(), ensure_ascii=False))
        else:
            print(f"{problem.path}: {problem.reason}  [clip {problem.clip_id}]")
    files = len({p.path for p in problems})
    summary = (
        f"checked {count} clips: {len(problems)} problems in {files} files"
        if problems
        else f"checked {count} clips: no problems"
    )
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
