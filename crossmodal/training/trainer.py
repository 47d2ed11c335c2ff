"""The training loop: composes model, data, objective and optimiser from a TrainConfig.

Run directory layout::

    RUN_DIR/config.yaml     the full config of the run
    RUN_DIR/last.pt         resumable checkpoint, written atomically after every epoch,
                            on Ctrl-C and when the time budget ends
    RUN_DIR/best.pt         the checkpoint with the best validation score so far
    RUN_DIR/model.pt        the best model alone (CrossModalModel.save), for inference
    RUN_DIR/metrics.jsonl   one JSON record per logged step / validation
    RUN_DIR/curves.png      loss and validation curves, drawn at the end
    RUN_DIR/summary.json    timings and final validation metrics
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from crossmodal.config import from_dict, save_yaml, to_dict
from crossmodal.errors import CrossmodalError
from crossmodal.fileio import atomic_write_text
from crossmodal.logging_utils import progress_disabled
from crossmodal.training import builders
from crossmodal.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from crossmodal.training.config import TrainConfig
from crossmodal.training.metrics_log import MetricsLog, plot_curves

log = logging.getLogger(__name__)


class TrainingDivergedError(CrossmodalError):
    """Too many consecutive steps with a non-finite loss or gradient."""


@dataclass
class TrainResult:
    run_dir: Path
    epochs_done: int
    steps: int
    train_seconds: float
    best_score: float | None
    val: dict[str, Any] | None
    stopped_early: bool


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CrossmodalError(f"device {name!r} requested but CUDA is not available")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _init_distributed(device: torch.device) -> tuple[int, int]:
    """(rank, world size); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


class Trainer:
    """Train a :class:`~crossmodal.model.CrossModalModel` as ``cfg`` describes.

    ``resume=True`` continues from ``RUN_DIR/last.pt`` (the config stored there wins;
    ``epochs`` and ``max_minutes`` of ``cfg`` may extend it).
    """

    def __init__(self, cfg: TrainConfig, run_dir: str | Path, resume: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.resume_payload: dict[str, Any] | None = None
        if resume:
            last = self.run_dir / "last.pt"
            try:
                self.resume_payload = load_checkpoint(last)
            except CheckpointError as err:
                raise CheckpointError(
                    f"cannot resume: {err}. The file is left as it is"
                    + ("; best.pt is intact" if (self.run_dir / "best.pt").is_file() else "")
                ) from err
            stored = from_dict(TrainConfig, self.resume_payload["train_config"])
            stored.epochs = cfg.epochs
            stored.max_minutes = cfg.max_minutes
            cfg = stored
        elif (self.run_dir / "last.pt").exists():
            raise CrossmodalError(
                f"{self.run_dir} already holds a run; pass --resume to continue it or choose "
                "another --out"
            )
        self.cfg = cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = resolve_device(cfg.device)
        self.rank, self.world = _init_distributed(self.device)
        self.is_main = self.rank == 0
        seed_everything(cfg.seed + self.rank)

        from crossmodal.model import CrossModalModel

        self.model = CrossModalModel.from_config(cfg.model).to(self.device)
        if cfg.frozen_backbones:
            self.model.freeze_backbones()
        self.train_set, self.val_set = builders.build_datasets(
            cfg, self.model.video_spec, self.model.audio_spec
        )
        self.keys = builders.match_keys(self.train_set, cfg.match_key)
        num_keys = int(self.keys.max()) + 1
        self.objective = builders.build_objective(cfg, num_keys, self.model.embed_dim).to(
            self.device
        )
        self.frozen = None
        if cfg.frozen_backbones:
            from crossmodal.training.frozen import FrozenFeatures

            self.frozen = FrozenFeatures.compute(
                self.model, self.train_set, cfg.frozen_windows, self.device, cfg.batch_size
            )
        self.steps_per_epoch = max(
            len(builders.epoch_batches(cfg, self.keys, 0, self.rank, self.world))
            // cfg.optim.accum_steps,
            1,
        )
        total_steps = self.steps_per_epoch * cfg.epochs
        self.optimizer, self.scheduler = builders.build_optimizer(
            cfg, [self.model, self.objective], total_steps
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp == "fp16" and self._cuda)
        self.forward_model: nn.Module = self.model
        if self.frozen is not None:
            from crossmodal.training.frozen import HeadPair

            self.forward_model = HeadPair(self.model)
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.forward_model = DistributedDataParallel(
                self.forward_model, device_ids=[self.device.index] if self._cuda else None
            )
        self.epoch = 0
        self.epoch_step = 0  # batches of the current epoch already consumed
        self.step = 0  # optimiser steps
        self.best_score: float | None = None
        self.last_val: dict[str, Any] | None = None
        self.train_seconds = 0.0
        if self.resume_payload is not None:
            self._restore(self.resume_payload)

    @property
    def _cuda(self) -> bool:
        return self.device.type == "cuda"

    # -- checkpoints -----------------------------------------------------------------
    def _payload(self) -> dict[str, Any]:
        return {
            "model_config": self.model.config_dict(),
            "model": self.model.state_dict(),
            "objective": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "train_config": to_dict(self.cfg),
            "epoch": self.epoch,
            "epoch_step": self.epoch_step,
            "step": self.step,
            "best_score": self.best_score,
            "train_seconds": self.train_seconds,
            "labels": list(self.train_set.labels),
            "rng": rng_state(),
        }

    def _restore(self, payload: dict[str, Any]) -> None:
        self.model.load_state_dict(payload["model"])
        self.objective.load_state_dict(payload["objective"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.scaler.load_state_dict(payload["scaler"])
        self.epoch = payload["epoch"]
        self.epoch_step = payload["epoch_step"]
        self.step = payload["step"]
        self.best_score = payload["best_score"]
        self.train_seconds = payload["train_seconds"]
        set_rng_state(payload["rng"])
        log.info("resumed at epoch %d, step %d", self.epoch + 1, self.step)

    def save(self, name: str) -> Path:
        path = self.run_dir / name
        if self.is_main:
            save_checkpoint(path, self._payload())
        return path

    # -- one step ----------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.cfg.amp == "none" or not self._cuda:
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.cfg.amp == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    def _inputs(self, batches: list[list[int]]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(video, audio) inputs of each batch: decoded clips, or cached backbone features
        (one random window per clip, the same window for both modalities)."""
        if self.frozen is not None:
            for indices in batches:
                yield self.frozen.sample(indices, self.device)
            return
        from crossmodal.data.loader import make_loader

        loader = make_loader(
            self.train_set,
            batch_sampler=batches,
            num_workers=self.cfg.data.num_workers,
            seed=self.cfg.seed * 1000 + self.epoch * 10 + self.rank,
        )
        for batch in loader:
            yield (
                batch["video"].to(self.device, non_blocking=True),
                batch["audio"].to(self.device, non_blocking=True),
            )

    def _embed(self, video: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with self._autocast():
            video_emb, music_emb = self.forward_model(video, audio)
        return video_emb.float(), music_emb.float()

    def _loss(
        self, video_emb: torch.Tensor, music_emb: torch.Tensor, keys: torch.Tensor
    ) -> torch.Tensor:
        if self.world > 1:
            from crossmodal.distributed import gather_embeddings

            video_emb, keys_all = gather_embeddings(video_emb, keys)
            music_emb, _ = gather_embeddings(music_emb, keys)
            keys = keys_all
        return self.objective(video_emb, keys, music_emb, keys)

    # -- the loop ------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.is_main:
            save_yaml(cfg, self.run_dir / "config.yaml")
        metrics = (
            MetricsLog(self.run_dir, resume_step=self.step if self.resume_payload else None)
            if self.is_main
            else None
        )
        started = time.monotonic() - self.train_seconds
        deadline = started + cfg.max_minutes * 60 if cfg.max_minutes else None
        stopped_early = False
        bad_steps = 0
        log.info(
            "training %s on %s: %d clips, %d steps/epoch × %d epochs, batch %d%s",
            type(self.model).__name__,
            self.device,
            len(self.train_set),
            self.steps_per_epoch,
            cfg.epochs,
            cfg.batch_size,
            f" × {self.world} ranks" if self.world > 1 else "",
        )
        try:
            while self.epoch < cfg.epochs and not stopped_early:
                batches = builders.epoch_batches(cfg, self.keys, self.epoch, self.rank, self.world)
                self.model.train()
                bar = tqdm(
                    total=len(batches),
                    initial=self.epoch_step,
                    unit="batch",
                    desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
                    disable=progress_disabled() or not self.is_main,
                    leave=False,
                )
                window_clips, window_start = 0, time.monotonic()
                accum = 0
                running: list[float] = []
                for indices, (video, audio) in zip(
                    batches[self.epoch_step :],
                    self._inputs(batches[self.epoch_step :]),
                    strict=True,
                ):
                    keys = torch.as_tensor(self.keys[indices], device=self.device)
                    video_emb, music_emb = self._embed(video, audio)
                    loss = self._loss(video_emb, music_emb, keys)
                    self.epoch_step += 1
                    bar.update(1)
                    window_clips += len(indices)
                    if not torch.isfinite(loss):
                        bad_steps = self._bad_step(bad_steps, f"loss is {loss.item()}")
                        accum = 0
                        continue
                    self.scaler.scale(loss / cfg.optim.accum_steps).backward()
                    accum += 1
                    if accum < cfg.optim.accum_steps:
                        continue
                    accum = 0
                    self.scaler.unscale_(self.optimizer)
                    params = [p for g in self.optimizer.param_groups for p in g["params"]]
                    grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
                    if not torch.isfinite(grad_norm):
                        bad_steps = self._bad_step(
                            bad_steps, f"gradient norm is {grad_norm.item()}"
                        )
                        self.scaler.update()
                        continue
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                    self.optimizer.zero_grad(set_to_none=True)
                    self.scheduler.step()
                    self.step += 1
                    bad_steps = 0
                    running.append(loss.item())
                    if self.step % cfg.log_every == 0 or self.epoch_step == len(batches):
                        elapsed = max(time.monotonic() - window_start, 1e-9)
                        clips_per_s = window_clips * self.world / elapsed
                        mean_loss = float(np.mean(running))
                        bar.set_postfix(loss=f"{mean_loss:.4f}", clips_s=f"{clips_per_s:.1f}")
                        if metrics is not None:
                            terms = {
                                k: float(v)
                                for k, v in getattr(self.objective, "last_terms", {}).items()
                            }
                            metrics.write(
                                "train",
                                self.step,
                                self.epoch + 1,
                                loss=mean_loss,
                                lr=self.scheduler.get_last_lr()[0],
                                clips_per_s=clips_per_s,
                                **terms,
                            )
                        running.clear()
                        window_clips, window_start = 0, time.monotonic()
                    if deadline is not None and time.monotonic() > deadline:
                        log.info("time budget of %.1f min reached", cfg.max_minutes)
                        stopped_early = True
                        break
                bar.close()
                self.train_seconds = time.monotonic() - started
                epoch_done = self.epoch_step >= len(batches)
                if epoch_done:
                    self.epoch += 1
                    self.epoch_step = 0
                is_last = self.epoch >= cfg.epochs or stopped_early
                if self.val_set is not None and (is_last or self.epoch % cfg.eval_every == 0):
                    self._validate(metrics)
                self.save("last.pt")
                self.train_seconds = time.monotonic() - started
        except KeyboardInterrupt:
            self.train_seconds = time.monotonic() - started
            path = self.save("last.pt")
            log.warning("interrupted: saved %s; continue with --resume", path)
            raise
        finally:
            if metrics is not None:
                metrics.close()
        return self._finish(stopped_early)

    def _bad_step(self, bad_steps: int, reason: str) -> int:
        bad_steps += 1
        self.optimizer.zero_grad(set_to_none=True)
        log.warning("step skipped: %s (%d in a row)", reason, bad_steps)
        if bad_steps >= self.cfg.max_bad_steps:
            kept = self.run_dir / "last.pt"
            raise TrainingDivergedError(
                f"training stopped: {bad_steps} consecutive steps with a non-finite loss or "
                f"gradient; try a lower --lr"
                + (f". The last good checkpoint is kept at {kept}" if kept.exists() else "")
            )
        return bad_steps

    @torch.no_grad()
    def _validate(self, metrics: MetricsLog | None) -> None:
        from crossmodal.evaluation.crossmodal_eval import evaluate_embeddings
        from crossmodal.inference import embed_dataset

        if not self.is_main:
            self._barrier()
            return
        embedded = embed_dataset(
            self.model,
            self.val_set,
            batch_size=self.cfg.batch_size,
            device=self.device,
            desc="validating",
        )
        report = evaluate_embeddings(
            embedded.video, embedded.music, embedded.tracks, embedded.labels, with_nmi=False
        )
        score = 0.5 * (report["video_to_music"]["mAP"] + report["music_to_video"]["mAP"])
        flat = {
            f"{prefix}_{k}": v
            for prefix, name in (("v2m", "video_to_music"), ("m2v", "music_to_video"))
            for k, v in report[name].items()
        }
        log.info(
            "epoch %d validation: v→m R@1 %.3f R@10 %.3f MedR %.1f | m→v R@1 %.3f R@10 %.3f MedR %.1f",
            self.epoch,
            flat["v2m_R@1"],
            flat["v2m_R@10"],
            flat["v2m_MedR"],
            flat["m2v_R@1"],
            flat["m2v_R@10"],
            flat["m2v_MedR"],
        )
        if metrics is not None:
            metrics.write("val", self.step, self.epoch, score=score, **flat)
        self.last_val = report
        if self.best_score is None or score > self.best_score:
            self.best_score = score
            self.save("best.pt")
        self._barrier()

    def _barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def _finish(self, stopped_early: bool) -> TrainResult:
        if self.is_main:
            best = self.run_dir / "best.pt"
            source = best if best.is_file() else self.run_dir / "last.pt"
            if source.is_file():
                payload = load_checkpoint(source)
                from crossmodal.model import CrossModalModel, ModelConfig

                best_model = CrossModalModel.from_config(
                    ModelConfig.from_dict(payload["model_config"]), load_pretrained=False
                )
                best_model.load_state_dict(payload["model"])
                best_model.save(self.run_dir / "model.pt")
            plot_curves(self.run_dir / "metrics.jsonl", self.run_dir / "curves.png")
            summary = {
                "epochs_done": self.epoch,
                "steps": self.step,
                "train_seconds": round(self.train_seconds, 2),
                "best_score": self.best_score,
                "stopped_early": stopped_early,
                "val": self.last_val,
            }
            atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        return TrainResult(
            self.run_dir,
            self.epoch,
            self.step,
            self.train_seconds,
            self.best_score,
            self.last_val,
            stopped_early,
        )


def train(cfg: TrainConfig, run_dir: str | Path, resume: bool = False) -> TrainResult:
    """Train per ``cfg`` into ``run_dir``; see :class:`Trainer`."""
    return Trainer(cfg, run_dir, resume=resume).fit()
