"""`crossmodal synth OUT_DIR`: generate the synthetic music-video corpus."""

from __future__ import annotations

import argparse
import os

from crossmodal.apps.cli._args import float_range, int_range, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="generate a synthetic music-video corpus (.mp4 + manifest)",
        description=(
            "Write N synthetic music videos (H.264 + AAC .mp4) whose pictures follow their "
            "music (beats, accents, breaks, loudness, pitch), six moods as categories, and "
            "OUT_DIR/manifest.jsonl with train/val/test splits. Deterministic given --seed, "
            "whatever --workers is."
        ),
    )
    parser.add_argument(
        "out_dir", metavar="OUT_DIR", help="folder to write videos/ and manifest.jsonl into"
    )
    parser.add_argument(
        "--clips", type=positive_int, default=1400, help="number of clips (default: 1400)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--split",
        default="0.7,0.1,0.2",
        help="train,val,test as fractions summing to 1 or counts summing to --clips (default: 0.7,0.1,0.2)",
    )
    parser.add_argument(
        "--duration",
        type=float_range(0, low_inclusive=False),
        default=4.0,
        help="seconds per clip (default: 4)",
    )
    parser.add_argument(
        "--size",
        type=int_range(2, 8192),
        default=112,
        help="frame width and height in px, even (default: 112)",
    )
    parser.add_argument(
        "--fps",
        type=float_range(0, 1000, low_inclusive=False),
        default=12.0,
        help="frames per second (default: 12)",
    )
    parser.add_argument(
        "--sample-rate",
        type=int_range(1000, 768_000),
        default=16000,
        help="audio sample rate in Hz (default: 16000)",
    )
    variants = parser.add_argument_group(
        "variants",
        "corpora that differ from the default one, to test what transfers; all off by "
        "default, which leaves the videos and manifest byte-identical",
    )
    variants.add_argument(
        "--timbres",
        choices=("default", "alt"),
        default="default",
        help="instrument set of the melodies: 'alt' plays each default instrument on a "
        "different one (sine→pad, triangle→clarinet, square→organ, saw→brass, pluck→harp, "
        "bell→marimba); moods and the object's shape stay as they are (default: default)",
    )
    variants.add_argument(
        "--clutter",
        type=float_range(0, 1),
        default=0.0,
        metavar="F",
        help="background clutter unrelated to the music, in [0, 1]: a static random "
        "texture blended in at 0.5×F and round(8×F) distractor shapes drifting on their "
        "own random paths (default: 0, none)",
    )
    variants.add_argument(
        "--shake",
        type=float_range(0),
        default=0.0,
        metavar="F",
        help="camera shake unrelated to the music, >= 0: every frame moves by a smooth "
        "random offset of up to F × the frame size (0.05: about 5%%), on top of the shake "
        "at accents (default: 0, none)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help=f"rendering processes (default: 1; this machine has {os.cpu_count()} CPUs)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing corpus in OUT_DIR"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crossmodal.data.synth import SynthConfig, generate_corpus, parse_split
    from crossmodal.errors import CrossmodalError
    from crossmodal.logging_utils import progress_bars

    if args.workers < 1:
        raise CrossmodalError(f"--workers must be >= 1, got {args.workers}")
    config = SynthConfig(
        clips=args.clips,
        seed=args.seed,
        duration=args.duration,
        size=args.size,
        fps=args.fps,
        sample_rate=args.sample_rate,
        split=parse_split(args.split),
        timbres=args.timbres,
        clutter=args.clutter,
        shake=args.shake,
    )
    manifest = generate_corpus(
        args.out_dir,
        config,
        workers=args.workers,
        overwrite=args.overwrite,
        progress=progress_bars(),
    )
    print(manifest)
    return 0
