"""The corpus → model → index pipeline that the demo and the notebooks share.

A :class:`Pipeline` builds each stage on first use and reuses it afterwards; stages live
under one folder per media configuration::

    ROOT/data-<key>/             key: hash of the media settings and the package version
      corpus/                    synthetic clips + manifest.jsonl (train/val/test)
      library/                   a few long clips (when ``library_clips`` > 0)
      features/                  decoded-clip cache shared by every stage
      model-<key>/               training run (model.pt, metrics.jsonl, summary.json);
                                 key: hash of the training settings
      index-<key>/               faiss + SQLite store of the test split (and the library)
      <prefix>-<key>/            other training runs (:meth:`Pipeline.trained_run`);
                                 key: hash of the whole training config
      .lock                      held while a stage is being built

A stage is built in ``.<stage>.tmp-<pid>`` and renamed into place only when complete,
under the exclusive writer lock of ``.lock`` (:class:`~crossmodal.retrieval.lock.WriterLock`,
waiting): two processes never both build a stage, and an interrupted build never looks
finished (the next builder removes its temporary folder).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import crossmodal
from crossmodal.errors import CrossmodalError

if TYPE_CHECKING:
    from crossmodal.data import ClipRecord, PairedClipDataset
    from crossmodal.model import CrossModalModel, ModelConfig
    from crossmodal.training.config import TrainConfig

log = logging.getLogger(__name__)

# Bump when a stage's recipe changes so that caches built by the old one are not reused.
RECIPE_VERSION = 3
STAGES = ("corpus", "library", "model", "index")
# PipelineConfig fields that change the media, and those that change the trained model;
# the others (threads, workers) change how fast, not what is built.
DATA_FIELDS = ("clips", "split", "seed", "duration", "size", "library_clips", "library_duration")
MODEL_FIELDS = ("seed", "video_size", "epochs", "batch_size", "lr", "train_minutes")


def _digest(payload: dict[str, Any]) -> str:
    blob = json.dumps(payload, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class PipelineConfig:
    """What a pipeline builds. The defaults are the demo's.

    Corpus: ``clips`` synthetic clips of ``duration`` s at ``size`` px, split ``split``
    (train, val, test counts), from ``seed``. Library: ``library_clips`` longer clips of
    ``library_duration`` s (seed ``seed + 1``) for the matched-window demos; 0 for none.
    Model: the registry's tiny towers (the video tower at ``video_size`` px when set),
    trained with the default objective for ``epochs`` × (train clips // ``batch_size``)
    steps at most, ``train_minutes`` at most, at ``lr`` (None: the optimiser default),
    seed ``seed``. ``threads``: torch threads while building (None: torch's default);
    ``workers``: processes rendering the corpus.
    """

    clips: int = 1000
    split: tuple[int, int, int] = (700, 100, 200)
    seed: int = 0
    duration: float = 4.0
    size: int = 112
    library_clips: int = 0
    library_duration: float = 12.0
    video_size: int | None = None
    epochs: int = 10
    batch_size: int = 64
    lr: float | None = None
    train_minutes: float | None = 5.0
    threads: int | None = None
    workers: int = 1

    def __post_init__(self) -> None:
        if len(self.split) != 3 or sum(self.split) != self.clips:
            raise CrossmodalError(
                f"split {tuple(self.split)} must be three counts (train, val, test) summing "
                f"to clips={self.clips}"
            )
        if min(self.split[0], self.split[2]) < 1:
            raise CrossmodalError(
                f"split {tuple(self.split)} needs at least one train and one test clip"
            )
        if self.epochs < 1 or not 2 <= self.batch_size <= self.split[0]:
            raise CrossmodalError(
                f"epochs ({self.epochs}) must be >= 1 and batch_size ({self.batch_size}) "
                f"between 2 and the number of train clips ({self.split[0]})"
            )
        if self.library_clips < 0 or (self.library_clips and self.library_duration < self.duration):
            raise CrossmodalError(
                f"the library needs clips of at least {self.duration} s, got "
                f"{self.library_clips} of {self.library_duration} s"
            )
        if self.threads is not None and self.threads < 1:
            raise CrossmodalError(f"threads must be >= 1, got {self.threads}")
        if self.workers < 1:
            raise CrossmodalError(f"workers must be >= 1, got {self.workers}")

    def data_key(self) -> str:
        """12 hex digits naming the media (and the recipe and package version)."""
        fields = {name: getattr(self, name) for name in DATA_FIELDS}
        return _digest(
            {"fields": fields, "recipe": RECIPE_VERSION, "version": crossmodal.__version__}
        )

    def model_key(self) -> str:
        """12 hex digits naming the training settings (within one media folder)."""
        return _digest({name: getattr(self, name) for name in MODEL_FIELDS})

    def model_config(self) -> ModelConfig:
        """The architecture: registry tiny towers, video tower at ``video_size`` px."""
        from crossmodal.model import ModelConfig

        if self.video_size is None:
            return ModelConfig()
        return ModelConfig(video_overrides={"size": self.video_size})


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch threads (None: unchanged), then restore."""
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Pipeline:
    """The corpus, library, model and index of one :class:`PipelineConfig` under ``root``.

    Each accessor builds its stage (and the stages it needs) on first use and returns a
    path. ``timings[stage]`` is ``("built" | "reused", seconds)`` for the stages this
    object touched (the build, when it built one).
    """

    def __init__(self, config: PipelineConfig, root: str | Path) -> None:
        self.config = config
        self.root = Path(root)
        self.folder = self.root / f"data-{self.config.data_key()}"
        self.timings: dict[str, tuple[str, float]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.folder)!r})"

    # -- stages ---------------------------------------------------------------------------
    def _stage(self, name: str, folder: str, build: Callable[[Path], None]) -> Path:
        """``self.folder / folder``, calling ``build(tmp)`` first when it does not exist;
        ``build`` fills the fresh folder ``tmp``, which is then renamed into place."""
        from crossmodal.retrieval.lock import WriterLock

        final = self.folder / folder
        started = time.perf_counter()
        state = "reused"
        if not final.is_dir():
            self.folder.mkdir(parents=True, exist_ok=True)
            with WriterLock(self.folder / ".lock", wait=True):
                # Another process may have finished it while this one waited for the lock.
                if not final.is_dir():
                    for stale in self.folder.glob(f".{folder}.tmp-*"):
                        # Under the lock no other builder runs: these are from dead ones.
                        shutil.rmtree(stale)
                    tmp = self.folder / f".{folder}.tmp-{os.getpid()}"
                    log.info("building the %s in %s", name, final)
                    try:
                        build(tmp)
                        os.rename(tmp, final)
                    finally:
                        shutil.rmtree(tmp, ignore_errors=True)
                    state = "built"
        if state == "built" or name not in self.timings:
            self.timings[name] = (state, round(time.perf_counter() - started, 1))
        return final

    @property
    def features_dir(self) -> Path:
        """Decoded-clip cache (:class:`~crossmodal.data.FeatureCache`) of every stage."""
        return self.folder / "features"

    @property
    def run_dir(self) -> Path:
        """The training run folder (model.pt, metrics.jsonl, summary.json, curves.png)."""
        return self.folder / f"model-{self.config.model_key()}"

    @property
    def index_dir(self) -> Path:
        """Where the index is (or will be) built."""
        return self.folder / f"index-{self.config.model_key()}"

    def corpus(self) -> Path:
        """The corpus manifest (the corpus is generated on first use)."""
        cfg = self.config
        return self._synth("corpus", cfg.clips, cfg.seed, cfg.duration, cfg.split)

    def library(self) -> Path:
        """The manifest of the long library clips (all in split ``test``)."""
        cfg = self.config
        if cfg.library_clips < 1:
            raise CrossmodalError("this pipeline has no library (library_clips is 0)")
        n = cfg.library_clips
        return self._synth("library", n, cfg.seed + 1, cfg.library_duration, (0, 0, n))

    def _synth(
        self, name: str, clips: int, seed: int, duration: float, split: tuple[int, ...]
    ) -> Path:
        from crossmodal.data.manifest import MANIFEST_NAME
        from crossmodal.data.synth.corpus import SynthConfig, generate_corpus
        from crossmodal.logging_utils import progress_disabled

        synth = SynthConfig(
            clips=clips,
            seed=seed,
            duration=duration,
            size=self.config.size,
            split=tuple(float(x) for x in split),
        )

        def build(tmp: Path) -> None:
            generate_corpus(
                tmp, synth, workers=self.config.workers, progress=not progress_disabled()
            )

        return self._stage(name, name, build) / MANIFEST_NAME

    def train_config(self, *, vibe: bool = False, epochs: int | None = None) -> TrainConfig:
        """The training configuration of the pipeline's model: one part (sync) and the
        instance-level objective. ``vibe``: instead the two-part model of ``crossmodal
        train``'s defaults (a vibe part of the default width, input, dropout and blend, the
        default music tower's options) with the default
        objective (the instance terms plus the mood term on the vibe part).
        ``epochs``: instead of the config's."""
        from crossmodal.training.config import DataConfig, LossTerm, OptimConfig, TrainConfig

        cfg = self.config
        if epochs is not None and epochs < 1:
            raise CrossmodalError(f"epochs must be >= 1, got {epochs}")
        optim = OptimConfig() if cfg.lr is None else OptimConfig(lr=cfg.lr)
        extra: dict[str, Any] = {} if cfg.threads is None else {"threads": cfg.threads}
        if cfg.train_minutes is not None:
            extra["max_minutes"] = cfg.train_minutes
        model = cfg.model_config()
        if vibe:
            default = TrainConfig().model
            overrides = model.music_overrides
            if model.music_encoder == default.music_encoder:
                # The default music tower's options too (its clip summary), under the
                # pipeline's own.
                overrides = {**default.music_overrides, **overrides}
            model = dataclasses.replace(
                model,
                vibe_dim=default.vibe_dim,
                vibe_input=default.vibe_input,
                vibe_dropout=default.vibe_dropout,
                blend=default.blend,
                music_overrides=overrides,
            )
            extra["losses"] = TrainConfig().losses
        else:
            # The demo's one-part model keeps the instance-level objective it was
            # measured with (the default adds a mood term for a model's vibe part).
            extra["losses"] = [LossTerm("info_nce"), LossTerm("npair")]
        return TrainConfig(
            model=model,
            data=DataConfig(
                manifest=str(self.folder / "corpus" / "manifest.jsonl"),
                cache_dir=str(self.features_dir),
            ),
            optim=optim,
            epochs=cfg.epochs if epochs is None else epochs,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            **extra,
        )

    def model(self) -> Path:
        """``model.pt`` of the trained model (trained on first use)."""
        return self.trained_run(self.train_config(), folder=self.run_dir.name) / "model.pt"

    def trained_run(
        self, cfg: TrainConfig, prefix: str = "run", *, folder: str | None = None
    ) -> Path:
        """The folder of a training run of ``cfg`` (any config, e.g. another loss), trained
        on first use and kept under ``prefix-<hash of the whole config>`` (or ``folder``).

        The folder keeps ``model.pt``, ``metrics.jsonl``, ``summary.json`` and
        ``curves.png``; the resume checkpoints (``last.pt``, ``best.pt``) of the finished
        run are dropped to keep the cache small.
        """
        from crossmodal.config import to_dict
        from crossmodal.training.trainer import train

        self.corpus()

        def build(tmp: Path) -> None:
            with torch_threads(self.config.threads):
                train(cfg, tmp)
            for name in ("last.pt", "best.pt"):
                (tmp / name).unlink(missing_ok=True)

        folder = folder or f"{prefix}-{_digest(to_dict(cfg))}"
        stage = "model" if folder == self.run_dir.name else folder
        return self._stage(stage, folder, build)

    def vibe_model(self, epochs: int | None = None) -> Path:
        """``model.pt`` of the two-part model (:meth:`train_config` with ``vibe``),
        trained for ``epochs`` (None: the config's) on first use."""
        return self.trained_run(self.train_config(vibe=True, epochs=epochs), "vibe") / "model.pt"

    def index(self) -> Path:
        """The index folder of the test split (and the library), built on first use."""
        from crossmodal.model import CrossModalModel
        from crossmodal.retrieval.indexer import Indexer, library_files

        manifest = self.corpus()
        library = self.library() if self.config.library_clips else None
        model_file = self.model()

        def build(tmp: Path) -> None:
            model = CrossModalModel.load(model_file)
            libraries = {
                modality: library_files(manifest, modality, "test")
                + (library_files(library, modality) if library else [])
                for modality in ("music", "video")
            }
            with torch_threads(self.config.threads):
                Indexer(model, tmp).index(libraries)

        return self._stage("index", self.index_dir.name, build)

    # -- conveniences ---------------------------------------------------------------------
    def records(self, split: str | None = None) -> list[ClipRecord]:
        """Clip records of the corpus, all or those of one split."""
        from crossmodal.data import read_manifest

        records = read_manifest(self.corpus())
        return [r for r in records if split is None or r.split == split]

    def labels(self) -> list[str]:
        """The moods of the corpus, sorted (the label vocabulary of every dataset)."""
        return sorted({r.label for r in self.records() if r.label})

    def load_model(self, trained: bool = True) -> CrossModalModel:
        """The trained model in eval mode, or (``trained=False``) the same network as
        initialised before training (the trainer seeds torch with ``seed`` first)."""
        from crossmodal.model import CrossModalModel
        from crossmodal.training.seeding import seed_torch

        if trained:
            return CrossModalModel.load(self.model()).eval()
        seed_torch(self.config.seed)  # what the trainer does before building the model
        return CrossModalModel.from_config(self.config.model_config()).eval()

    def dataset(self, split: str, model: CrossModalModel) -> PairedClipDataset:
        """One centred window per clip of ``split``, decoded for ``model``'s inputs."""
        from crossmodal.data import PairedClipDataset

        return PairedClipDataset(
            self.records(split),
            model.video_spec,
            model.audio_spec,
            train=False,
            labels=self.labels(),
            cache=self.features_dir,
        )

    def summary(self) -> dict[str, Any]:
        """Where things are and what this object built or reused (JSON-ready)."""
        return {
            "folder": str(self.folder),
            "config": dataclasses.asdict(self.config),
            "stages": {
                name: {"state": state, "seconds": seconds}
                for name, (state, seconds) in self.timings.items()
            },
        }
