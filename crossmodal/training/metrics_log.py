"""Training metrics: a JSONL log (one record per line), TensorBoard when installed, and
a PNG of the curves."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from crossmodal.fileio import atomic_path

log = logging.getLogger(__name__)


class MetricsLog:
    """Appends ``{"kind", "step", "epoch", ...metrics}`` records to ``metrics.jsonl``.

    ``kind`` is "train" (mean loss, each term, lr and clips/s over the last
    ``log_every`` steps) or "val" (validation metrics, ``v2m_*`` and ``m2v_*``);
    ``step`` counts optimiser steps; ``epoch`` is fractional (3.5: half-way through the
    fourth epoch).

    On resume the file is reopened in append mode; records past the resumed step are
    dropped first so that the log never shows the same step twice.
    """

    def __init__(self, run_dir: str | Path, resume_step: int | None = None) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        if resume_step is not None and self.path.exists():
            kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step]
            with atomic_path(self.path) as tmp:
                tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
        elif resume_step is None and self.path.exists():
            self.path.unlink()
        self._tb = _tensorboard_writer(Path(run_dir) / "tensorboard")

    def write(self, kind: str, step: int, epoch: float, **values: Any) -> None:
        record = {"kind": kind, "step": step, "epoch": epoch, **values}
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Records of a metrics.jsonl; a torn last line (killed mid-write) is ignored."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def plot_curves(metrics_path: str | Path, out_png: str | Path) -> Path | None:
    """Loss per step and validation recall per (fractional) epoch, one PNG. None when
    there is nothing to plot or matplotlib is missing (logged)."""
    records = read_metrics(metrics_path)
    train = [r for r in records if r["kind"] == "train"]
    val = [r for r in records if r["kind"] == "val"]
    if not train and not val:
        return None
    try:
        import matplotlib.figure
    except ImportError:
        log.warning("matplotlib is not installed: no %s (pip install matplotlib)", out_png)
        return None

    # A bare Figure, not pyplot: no global backend is chosen or switched, so training
    # inside a notebook (or any interactive session) leaves its own plotting working.
    fig = matplotlib.figure.Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    if train:
        axes[0].plot([r["step"] for r in train], [r["loss"] for r in train], lw=1)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("training loss")
    axes[0].set_title("loss")
    val_keys = [k for k in ("v2m_R@1", "v2m_R@10", "m2v_R@1", "m2v_R@10") if val and k in val[0]]
    for key in val_keys:
        axes[1].plot([r["epoch"] for r in val], [r[key] for r in val], marker="o", label=key)
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("validation recall")
    axes[1].set_title("validation")
    if val_keys:
        axes[1].legend()
    fig.tight_layout()
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return out_png


def _tensorboard_writer(folder: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    log.debug("TensorBoard logging to %s", folder)
    return SummaryWriter(str(folder))
