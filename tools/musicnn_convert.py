"""Convert the musicnn 0.1.0 TensorFlow checkpoints to the PyTorch port's state dicts.

Dev tool; the converted files ship in ``encoders/music/musicnn_weights/``. No TensorFlow:
the checkpoints are read by :mod:`tools.musicnn_checkpoint`. Rebuild with::

    pip download --no-deps musicnn==0.1.0 -d /tmp/musicnn
    python -m tools.musicnn_convert /tmp/musicnn/musicnn-0.1.0-py3-none-any.whl

The TensorFlow variables are named by creation order (``conv2d_3``,
``batch_normalization_4``); the maps below pair them with the port's modules in the order
the original graph creates its layers.
"""

from __future__ import annotations

import argparse
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from tools.musicnn_checkpoint import read_checkpoint

MODELS = ("MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg")
OUT_DIR = Path(__file__).resolve().parents[1] / "encoders" / "music" / "musicnn_weights"

# Port module → (TF conv or dense scope, TF batch-norm scope), in graph creation order.
MUSICNN_LAYERS = {
    "input_bn": (None, "batch_normalization"),
    "timbral.0": ("conv2d", "batch_normalization_1"),
    "timbral.1": ("conv2d_1", "batch_normalization_2"),
    "temporal.0": ("conv2d_2", "batch_normalization_3"),
    "temporal.1": ("conv2d_3", "batch_normalization_4"),
    "temporal.2": ("conv2d_4", "batch_normalization_5"),
    "midend.0": ("conv2d_5", "batch_normalization_6"),
    "midend.1": ("conv2d_6", "batch_normalization_7"),
    "midend.2": ("conv2d_7", "batch_normalization_8"),
    "pool_bn": (None, "batch_normalization_9"),
    "dense": ("dense", None),
    "dense_bn": (None, "batch_normalization_10"),
    "classifier": ("dense_1", None),
}
VGG_LAYERS = {
    "input_bn": (None, "batch_normalization"),
    **{f"blocks.{i}": (f"{i + 1}CNN", f"batch_normalization_{i + 1}") for i in range(5)},
    "classifier": ("dense", None),
}
BN_PARAMS = {
    "weight": "gamma",
    "bias": "beta",
    "running_mean": "moving_mean",
    "running_var": "moving_variance",
}


def _kernel(module: str, kernel: np.ndarray) -> np.ndarray:
    """A TF kernel in the layout of the port's layer."""
    if kernel.ndim == 2:  # dense (in, out) → Linear (out, in)
        return kernel.T
    if module.startswith("midend"):
        # A [7, C] conv over a (time, C, 1) map is a 1-D conv over time with C channels:
        # (7, C, 1, out) → Conv1d (out, C, 7).
        return kernel[:, :, 0, :].transpose(2, 1, 0)
    return kernel.transpose(3, 2, 0, 1)  # (h, w, in, out) → Conv2d (out, in, h, w)


def convert(tensors: dict[str, np.ndarray], architecture: str) -> dict[str, torch.Tensor]:
    """TF variables of one checkpoint → the state dict of ``MusicnnNet``/``MusicnnVGGNet``.

    Every trained variable is used once (optimizer slots and counters are left out);
    anything unused or missing is an error.
    """
    layers = MUSICNN_LAYERS if architecture == "musicnn" else VGG_LAYERS
    state: dict[str, np.ndarray] = {}
    used: set[str] = set()
    for module, (weights, norm) in layers.items():
        conv = f"{module}.conv" if norm and weights else module
        bn = f"{module}.bn" if norm and weights else module
        if weights:
            state[f"{conv}.weight"] = _kernel(module, tensors[f"{weights}/kernel"])
            state[f"{conv}.bias"] = tensors[f"{weights}/bias"]
            used |= {f"{weights}/kernel", f"{weights}/bias"}
        if norm:
            for ours, theirs in BN_PARAMS.items():
                state[f"{bn}.{ours}"] = tensors[f"{norm}/{theirs}"]
                used.add(f"{norm}/{theirs}")
            state[f"{bn}.num_batches_tracked"] = np.array(0, dtype=np.int64)
    trained = {k for k in tensors if "Adam" not in k and not k.endswith("_power")}
    if trained != used:
        raise ValueError(f"variables left unconverted: {sorted(trained - used)}")
    # np.array, not np.ascontiguousarray: the latter turns 0-d counters into shape (1,)
    return {k: torch.from_numpy(np.array(v, order="C")) for k, v in state.items()}


def convert_wheel(wheel: Path, out_dir: Path = OUT_DIR) -> list[Path]:
    """Convert the four checkpoints of the musicnn wheel into ``out_dir``."""
    from safetensors.torch import save_file

    written = []
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(tmp, [n for n in archive.namelist() if n.startswith("musicnn/")])
        for model in MODELS:
            tensors = read_checkpoint(f"{tmp}/musicnn/{model}/")
            state = convert(tensors, model.split("_")[1])
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / f"{model}.safetensors"
            save_file(state, str(path), metadata={"source": f"musicnn 0.1.0 {model}"})
            written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="musicnn-0.1.0-py3-none-any.whl")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    for path in convert_wheel(args.wheel, args.out):
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
