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

Resuming repeats the uninterrupted run exactly (same batches, windows, dropout; see
:mod:`crossmodal.training.seeding`): a checkpoint is the state after an optimiser step,
and the micro-batches of an unfinished accumulation are redone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from crossmodal.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from crossmodal.config import from_dict, to_dict, to_yaml
from crossmodal.embedding_layout import GATE_QUANTILE, LEGACY_GATE_QUANTILE
from crossmodal.errors import CrossmodalError
from crossmodal.fileio import atomic_write_text
from crossmodal.losses import learned_logit_scale
from crossmodal.training import builders
from crossmodal.training.budget import Budget
from crossmodal.training.config import TrainConfig, config_for_resume, default_losses
from crossmodal.training.metrics_log import MetricsLog, plot_curves
from crossmodal.training.objective import build_objective, keys_of, mood_prototypes
from crossmodal.training.progress import EpochProgress
from crossmodal.training.runtime import resolve_device, setup_distributed
from crossmodal.training.seeding import SeededItems, derive_seed, seed_torch

log = logging.getLogger(__name__)

__all__ = ["TrainResult", "Trainer", "TrainingDivergedError", "resolve_device", "train"]


class TrainingDivergedError(CrossmodalError):
    """Too many consecutive steps with a non-finite loss or gradient."""


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` did. ``val``: the last validation report; ``best_val``:
    that of the best model (the one in ``model.pt``). ``stop_reason``: None (all epochs done),
    "converged", "max_steps", "no_validation" (a convergence budget without validation
    clips), "time" (``max_minutes``) or "stop_after_epoch"; ``stop_message`` says it in
    words."""

    run_dir: Path
    epochs_done: int
    steps: int
    train_seconds: float
    best_score: float | None
    val: dict[str, Any] | None
    stopped_early: bool
    stop_reason: str | None = None
    stop_message: str = ""
    best_val: dict[str, Any] | None = None


class Trainer:
    """Train a :class:`~crossmodal.model.CrossModalModel` as ``cfg`` describes, into
    ``run_dir``.

    ``resume=True`` continues from ``RUN_DIR/last.pt`` with the config stored there;
    ``cfg`` may change only the fields of
    :data:`~crossmodal.training.config.RESUMABLE_FIELDS` (e.g. raise ``epochs``: the
    cosine schedule then stretches to the new length from the current step), and
    ``explicit`` names the fields the caller set (None: all of ``cfg``); see
    :func:`~crossmodal.training.config.config_for_resume`.

    Under ``torchrun`` every rank runs a Trainer: each takes its part of every global
    batch, embeddings are all-gathered (with gradients) so the loss sees the whole
    batch, DDP averages the gradients; rank 0 alone validates and writes files.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: str | Path,
        resume: bool = False,
        explicit: Iterable[tuple[str, ...]] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        payload: dict[str, Any] | None = None
        if resume:
            payload = self._read_last()
            stored = from_dict(TrainConfig, payload["train_config"])
            cfg = config_for_resume(stored, cfg, explicit)
        elif (self.run_dir / "last.pt").exists():
            raise CrossmodalError(
                f"{self.run_dir} already holds a run; pass --resume to continue it or choose "
                "another --out"
            )
        self.cfg = cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device, self.rank, self.world, self._owns_group = setup_distributed(cfg.device)
        self.is_main = self.rank == 0
        if cfg.amp != "none" and self.device.type != "cuda":
            log.warning(
                "amp=%s works on CUDA only: training in float32 on %s", cfg.amp, self.device
            )

        from crossmodal.model import CrossModalModel

        if cfg.model.sync_gate is not None or cfg.model.sync_gate_quantile is not None:
            log.warning(
                "model.sync_gate %s (quantile %s) ignored: training calibrates the gate at "
                "each validation, at the %g quantile",
                cfg.model.sync_gate,
                cfg.model.sync_gate_quantile,
                GATE_QUANTILE,
            )
            cfg = dataclasses.replace(
                cfg,
                model=dataclasses.replace(cfg.model, sync_gate=None, sync_gate_quantile=None),
            )
            self.cfg = cfg
        # The same seed on every rank: identical initial weights, proxies and memories.
        seed_torch(cfg.seed)
        self.model = CrossModalModel.from_config(cfg.model).to(self.device)
        if cfg.frozen_backbones:
            self.model.freeze_backbones()
        self.train_set, self.val_set = builders.build_datasets(
            cfg, self.model.video_spec, self.model.audio_spec, self.run_dir, write=self.is_main
        )
        labelled = bool((self.train_set.label_indices >= 0).all())
        if not labelled and cfg.model.vibe_dim:
            # Nothing would train the vibe part: build the model without one. (With the
            # default objective, build_objective says so in its one line.)
            if cfg.losses != default_losses():
                log.warning("some training clips have no label: the model gets no vibe part")
            cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, vibe_dim=0))
            self.cfg = cfg
            seed_torch(cfg.seed)
            self.model = CrossModalModel.from_config(cfg.model).to(self.device)
            if cfg.frozen_backbones:
                self.model.freeze_backbones()
        self.objective = build_objective(
            cfg,
            {"track": len(self.train_set.track_ids), "label": len(self.train_set.labels)},
            self.model.layout,
            labelled,
        ).to(self.device)
        self._sync_moods()  # before a restore: the stored model has its mood centres
        self.batch_keys = (
            builders.sampler_keys(cfg, self.train_set)
            if cfg.data.sampler == "pk"
            else self.train_set.track_indices
        )
        self.steps_per_epoch = len(self._batches(0)) // cfg.optim.accum_steps
        self.frozen = None
        if cfg.frozen_backbones:
            self.frozen = self._frozen_features()
        self.budget = Budget(cfg, self.steps_per_epoch, validates=self.val_set is not None)
        self.optimizer, self.scheduler = builders.build_optimizer(
            cfg, [self.model, self.objective], lambda step: self.budget.lr_factor(step)
        )
        self.params = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=cfg.amp == "fp16" and self.device.type == "cuda"
        )
        self.forward_model: nn.Module = self.model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.forward_model = DistributedDataParallel(
                self.forward_model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
            )
        self.epoch = 0  # epochs completed
        self.epoch_step = 0  # batches of the current epoch consumed by completed steps
        self.step = 0  # optimiser steps
        self.best_score: float | None = None
        self.last_val: dict[str, Any] | None = None
        self.best_val: dict[str, Any] | None = None
        self.train_seconds = 0.0
        self._validated_at: int | None = None  # step of the latest validation
        self._soft_deadline: float | None = None  # convergence runs: start cooling down
        self.bad_steps = 0
        self._stop_requested = False
        self._in_update = False
        if payload is not None:
            self._restore(payload)

    # -- set-up --------------------------------------------------------------------------
    def _read_last(self) -> dict[str, Any]:
        last = self.run_dir / "last.pt"
        if not last.exists():
            raise CheckpointError(f"cannot resume: {self.run_dir} holds no last.pt")
        try:
            return load_checkpoint(last)
        except CheckpointError as err:
            intact = "; best.pt is intact" if (self.run_dir / "best.pt").is_file() else ""
            raise CheckpointError(
                f"cannot resume: {err}. The file is left as it is{intact}"
            ) from err

    def _batches(self, epoch: int) -> list[list[int]]:
        return builders.epoch_batches(self.cfg, self.batch_keys, epoch, self.rank, self.world)

    def _frozen_features(self) -> Any:
        from crossmodal.training.frozen import FrozenFeatures

        # Rank 0 fills the feature cache first; the other ranks then read it.
        if not self.is_main:
            self._barrier()
        features = FrozenFeatures.compute(
            self.model,
            self.train_set,
            self.cfg.frozen_windows,
            self.device,
            self.cfg.batch_size,
            seed=self.cfg.seed,
        )
        if self.is_main:
            self._barrier()
        return features

    # -- checkpoints -----------------------------------------------------------------------
    def _sync_moods(self) -> None:
        """Keep a vibe model's mood centres equal to the vibe term's class proxies (when
        that term is a proxy loss), so that every checkpoint's model predicts moods."""
        if not self.model.layout.has_vibe:
            return
        prototypes = mood_prototypes(self.objective, len(self.train_set.labels))
        if prototypes is not None:
            self.model.set_moods(list(self.train_set.labels), prototypes)

    def _payload(self) -> dict[str, Any]:
        # A model checkpoint (CrossModalModel.load reads it) plus the training state.
        self._sync_moods()
        return {
            **self.model.checkpoint(),
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
            "val": self.last_val,
            "best_val": self.best_val,
            "budget": self.budget.state_dict(),
        }

    def _restore(self, payload: dict[str, Any]) -> None:
        try:
            self.model.load_weights(payload["state_dict"], str(self.run_dir / "last.pt"))
            self._restore_gate(payload)
            self.objective.load_state_dict(payload["objective"])
            self.optimizer.load_state_dict(payload["optimizer"])
            self.scheduler.load_state_dict(payload["scheduler"])
            self.scaler.load_state_dict(payload["scaler"])
        except (CheckpointError, KeyError, RuntimeError, ValueError) as err:
            raise CheckpointError(
                f"{self.run_dir / 'last.pt'} does not fit its own config ({err}); the file "
                "is left as it is"
            ) from err
        self.epoch = payload["epoch"]
        self.epoch_step = payload["epoch_step"]
        self.step = payload["step"]
        self.best_score = payload["best_score"]
        self.train_seconds = payload["train_seconds"]
        self.last_val = payload.get("val")
        self.best_val = payload.get("best_val")
        self.budget.load_state_dict(payload.get("budget"))
        log.info(
            "resumed at epoch %d, batch %d (step %d)", self.epoch + 1, self.epoch_step, self.step
        )

    def save(self, name: str) -> Path:
        """Write the resumable state to ``RUN_DIR/name`` (rank 0 only), atomically."""
        path = self.run_dir / name
        if self.is_main:
            save_checkpoint(path, self._payload())
        return path

    # -- one step ----------------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.cfg.amp == "none" or self.device.type != "cuda":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.cfg.amp == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    def _inputs(
        self, batches: list[list[int]]
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]]:
        """(video, audio, keys) of each batch: decoded clips, or cached backbone features.
        Keys come from what was loaded, so a clip replaced after a decoding error carries
        its replacement's track and label."""
        if self.frozen is not None:
            for indices in batches:
                video, audio, tracks, labels = self.frozen.sample(indices, self.epoch, self.device)
                yield video, audio, keys_of(tracks, labels)
            return
        from crossmodal.data.loader import make_loader

        seeded = [[(i, derive_seed(self.cfg.seed, self.epoch, i)) for i in b] for b in batches]
        loader = make_loader(
            SeededItems(self.train_set),
            batch_sampler=seeded,
            num_workers=self.cfg.data.num_workers,
            seed=derive_seed(self.cfg.seed, self.epoch, self.rank),
        )
        for batch in loader:
            yield (
                batch["video"].to(self.device, non_blocking=True),
                batch["audio"].to(self.device, non_blocking=True),
                keys_of(batch["track"].to(self.device), batch["label"].to(self.device)),
            )

    def _loss(
        self, video: torch.Tensor, audio: torch.Tensor, keys: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        with self._autocast():
            video_emb, music_emb = self.forward_model(
                video, audio, from_features=self.frozen is not None
            )
        video_emb, music_emb = video_emb.float(), music_emb.float()
        if self.world > 1:
            from crossmodal.training.distributed import all_gather_no_grad, all_gather_with_grad

            video_emb = all_gather_with_grad(video_emb)
            music_emb = all_gather_with_grad(music_emb)
            keys = {name: all_gather_no_grad(value) for name, value in keys.items()}
        return self.objective(video_emb, keys, music_emb, keys)

    def _optimizer_step(self) -> str | None:
        """Clip, check and apply the accumulated gradients. None when applied (or when
        the fp16 scaler skipped an overflow, its own business); else why not."""
        self.scaler.unscale_(self.optimizer)
        clip = self.cfg.optim.grad_clip if self.cfg.optim.grad_clip > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, clip)
        if not torch.isfinite(grad_norm):
            if self.scaler.is_enabled() and self.scaler.get_scale() >= 1.0:
                self.scaler.step(self.optimizer)  # skipped by the scaler, scale lowered
                self.scaler.update()
                return None
            self.scaler.update()
            return f"gradient norm is {grad_norm.item()}"
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return None

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, stop_after_epoch: int | None = None) -> TrainResult:
        """Train until the budget is spent (``cfg.epochs`` done, or convergence: see
        :mod:`crossmodal.training.budget`), the time budget ends, or (resumably) after
        epoch ``stop_after_epoch``. Ctrl-C finishes the current step, saves
        ``last.pt`` and raises KeyboardInterrupt (a second Ctrl-C stops at once; the
        checkpoint of the last finished step is saved then too)."""
        cfg = self.cfg
        metrics = None
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.run_dir / "config.yaml", to_yaml(cfg))
            metrics = MetricsLog(self.run_dir, resume_step=self.step if self.step else None)
        started = time.monotonic() - self.train_seconds
        deadline = time.monotonic() + cfg.time_limit * 60 if cfg.time_limit else None
        if cfg.time_limit and self.budget.converging:
            self._soft_deadline = time.monotonic() + self.budget.soft_deadline(cfg.time_limit)
        stop_reason: str | None = None
        log.info(
            "training on %s: %d clips, %d steps/epoch, %s, batch %d%s%s",
            self.device,
            len(self.train_set),
            self.steps_per_epoch,
            self.budget.describe(),
            cfg.batch_size,
            f" × {self.world} ranks" if self.world > 1 else "",
            ", frozen backbones" if self.frozen is not None else "",
        )
        try:
            with self._graceful_interrupts():
                while (stop_reason := self._budget_spent()) is None:
                    stop_reason = self._train_epoch(metrics, deadline)
                    self.train_seconds = time.monotonic() - started
                    if stop_reason == "interrupt":
                        raise KeyboardInterrupt
                    if self._epoch_end_validation_due(stop_reason):
                        self._validate(metrics)
                    self.train_seconds = time.monotonic() - started
                    self.save("last.pt")
                    if (
                        stop_reason is None
                        and stop_after_epoch is not None
                        and stop_after_epoch <= self.epoch
                        and self._budget_spent() is None
                    ):
                        stop_reason = "stop_after_epoch"
                    if stop_reason is not None:
                        break
        except KeyboardInterrupt:
            self.train_seconds = time.monotonic() - started
            if self._in_update:
                log.warning("interrupted during an update: last.pt is left as it was")
            else:
                path = self.save("last.pt")
                log.warning("interrupted: saved %s; continue with --resume", path)
            raise
        finally:
            if metrics is not None:
                metrics.close()
        if stop_reason == "epochs":
            stop_reason = None
        log.info("stopped: %s", self.budget.stop_message(stop_reason, cfg.time_limit))
        result = self._finish(stop_reason)
        self._teardown()
        return result

    def _train_epoch(self, metrics: MetricsLog | None, deadline: float | None) -> str | None:
        """Train from the current position to the end of the epoch; the reason when it
        stopped before ("time" or "interrupt")."""
        cfg = self.cfg
        accum = cfg.optim.accum_steps
        batches = self._batches(self.epoch)
        self.model.train()
        progress = EpochProgress(
            total=len(batches),
            initial=self.epoch_step,
            desc=f"epoch {self.epoch + 1}" + (f"/{cfg.epochs}" if cfg.epochs else ""),
            enabled=self.is_main,
        )
        losses: list[float] = []
        terms: dict[str, list[float]] = {}
        window_clips, window_start = 0, time.monotonic()
        group_ok, reason = True, ""
        stop: str | None = None
        try:
            for position, (video, audio, keys) in enumerate(
                self._inputs(batches[self.epoch_step :]), start=self.epoch_step
            ):
                last_micro = (position + 1) % accum == 0
                if group_ok:
                    seed_torch(cfg.seed, self.rank, self.epoch, position)
                    sync = self.world == 1 or last_micro
                    with contextlib.nullcontext() if sync else self.forward_model.no_sync():
                        loss = self._loss(video, audio, keys)
                        if torch.isfinite(loss):
                            self.scaler.scale(loss / accum).backward()
                            losses.append(loss.item())
                            for name, value in self.objective.last_terms.items():
                                terms.setdefault(name, []).append(float(value))
                        else:
                            group_ok, reason = False, f"loss is {loss.item()}"
                window_clips += len(video) * self.world
                progress.update(1)
                if not last_micro:
                    continue
                self._in_update = True
                if group_ok:
                    failure = self._optimizer_step()
                    reason = failure or ""
                    group_ok = failure is None
                self.optimizer.zero_grad(set_to_none=True)
                self.epoch_step = position + 1
                if group_ok:
                    self.step += 1
                    self.bad_steps = 0
                self._in_update = False
                stepped, group_ok = group_ok, True
                if not stepped:
                    self._bad_step(reason)
                end_of_epoch = self.epoch_step == len(batches)
                if losses:
                    clips_s = window_clips / max(time.monotonic() - window_start, 1e-9)
                    mean_loss = float(np.mean(losses))
                    progress.set_postfix(loss=f"{mean_loss:.4f}", clips_s=f"{clips_s:.1f}")
                if losses and ((stepped and self.step % cfg.log_every == 0) or end_of_epoch):
                    if metrics is not None:
                        # The objective owns the temperature; log it where there is one.
                        scale = learned_logit_scale(self.objective)
                        extra = {} if scale is None else {"logit_scale": float(scale)}
                        metrics.write(
                            "train",
                            self.step,
                            self._epoch_progress(len(batches)),
                            loss=mean_loss,
                            lr=self.scheduler.get_last_lr()[0],
                            clips_per_s=clips_s,
                            **extra,
                            **{name: float(np.mean(v)) for name, v in terms.items()},
                        )
                    losses.clear()
                    terms.clear()
                    window_clips, window_start = 0, time.monotonic()
                if stepped:
                    stop = self._after_step(metrics)
                if stop is None:
                    stop = self._should_stop(deadline)
                if stop is not None:
                    break
        finally:
            progress.close()
        if self.epoch_step >= len(batches):
            self._in_update = True
            self.epoch += 1
            self.epoch_step = 0
            self._in_update = False
        return stop

    # -- the budget ------------------------------------------------------------------------------
    def _budget_spent(self) -> str | None:
        """Why the run is over ("epochs" for a fixed run), or None while it goes on."""
        if self.cfg.epochs is not None:
            return None if self.epoch < self.cfg.epochs else "epochs"
        return self.budget.after_step(self.step)

    def _after_step(self, metrics: MetricsLog | None) -> str | None:
        """After an optimiser step: validate when the budget's schedule says so, start the
        cool-down near the time limit; the budget's stop reason once it is spent."""
        if self.val_set is not None and self.budget.validation_due(self.step):
            was_cooling = self.budget.cooling
            self._validate(metrics)
            if not was_cooling and self.budget.cooling:
                self._rewind_to_best()
        soft = self._soft_deadline
        if soft is not None and not self.budget.cooling and self._all_past(soft):
            log.info("cooling down to end within max_minutes (%g)", self.cfg.time_limit)
            self.budget.start_cooldown(self.step, "time")
        return self.budget.after_step(self.step)

    def _restore_gate(self, payload: dict[str, Any]) -> None:
        """The sync gate that went with a checkpoint's weights (calibrated on them)."""
        if self.model.layout.has_vibe:
            config = payload.get("config") or {}
            self.model.set_sync_gate(
                config.get("sync_gate"),
                config.get("sync_gate_quantile") or LEGACY_GATE_QUANTILE,
            )

    def _rewind_to_best(self) -> None:
        """Converged: cool down from the best validated state (weights, temperature,
        optimiser moments) rather than from weights that stopped improving, which on a
        small corpus are past the best and overfitting. Every rank reads best.pt, written
        by rank 0 before the validation score was shared."""
        best = self.run_dir / "best.pt"
        if not best.is_file():
            return
        payload = load_checkpoint(best, map_location=self.device)
        if payload["step"] == self.step:
            return
        self.model.load_weights(payload["state_dict"], str(best))
        self._restore_gate(payload)
        self.objective.load_state_dict(payload["objective"])
        self.optimizer.load_state_dict(payload["optimizer"])
        log.info(
            "converged at step %d: cooling down from the best model (step %d)",
            self.step,
            payload["step"],
        )

    def _epoch_end_validation_due(self, stop_reason: str | None) -> bool:
        if self.val_set is None or self._validated_at == self.step:
            return False
        if self.cfg.epochs is None:
            # A convergence run validates on its step schedule; a stop by the clock
            # still leaves a validated model.
            return stop_reason == "time"
        return (
            stop_reason is not None
            or self.epoch >= self.cfg.epochs
            or (self.epoch_step == 0 and self.epoch % self.cfg.eval_every == 0)
        )

    def _all_past(self, when: float) -> bool:
        """Whether the clock passed ``when``; under DDP, whether it did on any rank."""
        past = time.monotonic() > when
        if self.world > 1:
            import torch.distributed as dist

            flag = torch.tensor([int(past)], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            past = bool(flag.item())
        return past

    def _epoch_progress(self, batches: int) -> float:
        return round(self.epoch + self.epoch_step / batches, 4)

    def _bad_step(self, reason: str) -> None:
        self.bad_steps += 1
        log.warning("step skipped: %s (%d in a row)", reason, self.bad_steps)
        if self.bad_steps >= self.cfg.max_bad_steps:
            kept = self.run_dir / "last.pt"
            raise TrainingDivergedError(
                f"training stopped: {self.bad_steps} consecutive steps with a non-finite loss "
                "or gradient; try a lower --lr"
                + (f". The last good checkpoint is kept at {kept}" if kept.exists() else "")
            )

    def _should_stop(self, deadline: float | None) -> str | None:
        """ "interrupt", "time" or None; under DDP every rank agrees (the first rank that
        wants to stop stops them all at the same step)."""
        code = 2 if self._stop_requested else 0
        if code == 0 and deadline is not None and time.monotonic() > deadline:
            code = 1
        if self.world > 1:
            import torch.distributed as dist

            flag = torch.tensor([code], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            code = int(flag.item())
        return {0: None, 1: "time", 2: "interrupt"}[code]

    @contextlib.contextmanager
    def _graceful_interrupts(self) -> Iterator[None]:
        """The first Ctrl-C asks the loop to stop after the current step; the second
        raises KeyboardInterrupt at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self._stop_requested:
                raise KeyboardInterrupt
            self._stop_requested = True
            log.warning("Ctrl-C: stopping after this step (again to stop at once)")

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _validate(self, metrics: MetricsLog | None) -> None:
        """Score the val split on rank 0 (see :meth:`_validation_score`); every rank's
        budget then observes the same score."""
        score = self._validation_score(metrics) if self.is_main else 0.0
        if self.world > 1:
            import torch.distributed as dist

            # Rank 0 calibrated the sync gate: every rank's model scores with it.
            gate = self.model.layout.gate if self.is_main else None
            shared = torch.tensor(
                [score, math.nan if gate is None else gate], dtype=torch.float64, device=self.device
            )
            dist.broadcast(shared, src=0)
            score = float(shared[0].item())
            if self.model.layout.has_vibe:
                value = float(shared[1].item())
                self.model.set_sync_gate(None if math.isnan(value) else value, GATE_QUANTILE)
        self._validated_at = self.step
        if self.budget.converging:
            self.budget.observe(self.step, score)

    @torch.no_grad()
    def _validation_score(self, metrics: MetricsLog | None) -> float:
        """Embed the val split with the model and score it (mean mAP of both
        directions; when the objective has mood terms, the mean of that and the mood
        MAP@R of both directions); a better score saves best.pt."""
        from crossmodal.embedding_layout import calibrate_gate
        from crossmodal.evaluation.crossmodal_eval import evaluate_embeddings
        from crossmodal.inference import embed_dataset

        embedded = embed_dataset(
            self.model,
            self.val_set,
            batch_size=self.cfg.batch_size,
            device=self.device,
            desc="validating",
        )
        layout = self.model.layout
        if layout.has_vibe:
            # The sync gate of this model, from its own validation pairs (stored with it).
            self.model.set_sync_gate(
                calibrate_gate(embedded.video, embedded.music, embedded.tracks, layout)
            )
            layout = self.model.layout
        report = evaluate_embeddings(
            embedded.video,
            embedded.music,
            embedded.tracks,
            embedded.labels,
            with_nmi=False,
            scorer=layout.scores,
        )
        score = 0.5 * (report["video_to_music"]["mAP"] + report["music_to_video"]["mAP"])
        category = report.get("category")
        if category is not None and "label" in (self.objective.keys or {}).values():
            # A mood-trained model is kept for both levels: instance mAP and mood MAP@R.
            mood = 0.5 * (category["video_to_music"]["MAP@R"] + category["music_to_video"]["MAP@R"])
            score = 0.5 * (score + mood)
        flat = {
            f"{prefix}_{k}": v
            for prefix, name in (("v2m", "video_to_music"), ("m2v", "music_to_video"))
            for k, v in report[name].items()
        }
        batches = len(self._batches(self.epoch))
        of = f"/{self.cfg.epochs}" if self.cfg.epochs else ""
        where = (
            f"after epoch {self.epoch}{of}"
            if self.epoch_step == 0
            else f"in epoch {self.epoch + 1}{of} at batch {self.epoch_step}/{batches}"
        )
        log.info(
            "validation %s (step %d): v→m R@1 %.3f R@10 %.3f MedR %.1f | "
            "m→v R@1 %.3f R@10 %.3f MedR %.1f",
            where,
            self.step,
            flat["v2m_R@1"],
            flat["v2m_R@10"],
            flat["v2m_MedR"],
            flat["m2v_R@1"],
            flat["m2v_R@10"],
            flat["m2v_MedR"],
        )
        if category is not None and layout.has_vibe:
            log.info(
                "validation moods: MAP@R v→m %.3f m→v %.3f, new video top-10 same mood %.3f%s",
                category["video_to_music"]["MAP@R"],
                category["music_to_video"]["MAP@R"],
                category["new_video_top10"],
                f" (sync gate {layout.gate:.3f})" if layout.gate is not None else "",
            )
        if metrics is not None:
            metrics.write("val", self.step, self._epoch_progress(batches), score=score, **flat)
        self.last_val = report
        if self.best_score is None or score > self.best_score:
            self.best_score = score
            self.best_val = report
            self.save("best.pt")
        return score

    def _barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def _teardown(self) -> None:
        if self._owns_group:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()
            self._owns_group = False

    def _finish(self, stop_reason: str | None) -> TrainResult:
        if self.is_main:
            best = self.run_dir / "best.pt"
            source = best if best.is_file() else self.run_dir / "last.pt"
            from crossmodal.inference import load_trained_model

            load_trained_model(source).save(self.run_dir / "model.pt")
            plot_curves(self.run_dir / "metrics.jsonl", self.run_dir / "curves.png")
            summary = {
                "epochs_done": self.epoch,
                "steps": self.step,
                "train_seconds": round(self.train_seconds, 2),
                "best_score": self.best_score,
                "stop_reason": stop_reason,
                "stop_message": self.budget.stop_message(stop_reason, self.cfg.time_limit),
                "model_from": source.name,
                "val": self.last_val,
                "best_val": self.best_val,
            }
            atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        return TrainResult(
            self.run_dir,
            self.epoch,
            self.step,
            self.train_seconds,
            self.best_score,
            self.last_val,
            stop_reason is not None,
            stop_reason,
            self.budget.stop_message(stop_reason, self.cfg.time_limit),
            self.best_val,
        )


def train(
    cfg: TrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    stop_after_epoch: int | None = None,
) -> TrainResult:
    """Train per ``cfg`` into ``run_dir``; see :class:`Trainer`."""
    return Trainer(cfg, run_dir, resume=resume).fit(stop_after_epoch=stop_after_epoch)
