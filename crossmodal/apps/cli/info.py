"""`crossmodal info`: versions of the stack and the compute devices this machine offers."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform

# Distributions the product is built on, in the order they are reported.
STACK = (
    "torch",
    "torchvision",
    "torchaudio",
    "torchcodec",
    "decord",
    "librosa",
    "soundfile",
    "transformers",
    "faiss-cpu",
    "numpy",
    "av",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info",
        help="show the installed stack and compute devices",
        description="Print the versions of crossmodal's dependencies and the devices torch sees.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def collect() -> dict[str, object]:
    """Versions of the stack (``None`` where missing) and device facts."""
    from crossmodal import __version__

    versions: dict[str, str | None] = {}
    for dist in STACK:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    info: dict[str, object] = {
        "crossmodal": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
    }
    import torch

    info["cuda"] = torch.cuda.is_available()
    info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    info["cpu_threads"] = torch.get_num_threads()
    return info


def run(args: argparse.Namespace) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"crossmodal {info['crossmodal']}  (python {info['python']}, {info['platform']})")
    for dist, version in info["packages"].items():  # type: ignore[union-attr]
        print(f"  {dist:<14} {version or 'NOT INSTALLED'}")
    devices = info["cuda_devices"] or ["none"]
    print(f"  cuda           {', '.join(devices)}")
    print(f"  cpu threads    {info['cpu_threads']}")
    return 0
