"""A fair loss zoo (notebook 03): every registered loss gets the same small tuning budget
on the validation split, then its registry defaults and its chosen setting are compared
on the test split.

The protocol, for each loss of :func:`crossmodal.losses.list_losses`:

1. :func:`tuning_settings`: ``budget`` settings of one parameter, the registry defaults
   first. The parameter and its values come from :data:`GRIDS` (one line per loss that
   needs a reasoned grid); a loss without an entry gets :func:`generic_grid`, multiples
   of the default of its scale / temperature / margin parameter, found in the
   constructor's signature. New losses and new defaults flow in without an edit here.
2. :meth:`LossZoo.tune`: each setting trains (or is reused from the cache) on the train
   split and is scored by the trainer on the val split (its validation score: the mean
   mAP of both directions). Training never reads the test split.
3. :func:`select`: the setting with the best val score (ties go to the earlier setting,
   so to the defaults). It sees val scores only.
4. :meth:`LossZoo.test_metrics`: only then are the defaults' run and the chosen run
   embedded on the test split.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossmodal.errors import CrossmodalError

if TYPE_CHECKING:
    from crossmodal.apps.pipeline import Pipeline
    from crossmodal.inference import EmbeddedClips
    from crossmodal.model import CrossModalModel
    from crossmodal.training.config import TrainConfig

# The reasoned grids: loss -> (parameter, values in order of preference; the first
# budget - 1 that differ from the registry default are tried besides it, so an entry
# lists budget values: it still fills the budget when a new default is one of them). Every
# cross-modal pair of the untrained network starts near cosine -0.07 (distance ~1.46
# between unit vectors), so the thresholds that assume same-modality starts get values
# around that point.
GRIDS: dict[str, tuple[str, tuple[float, ...]]] = {
    # Negatives start at distance ~1.46: a margin below it gives them no gradient while
    # the positives pull everything together, and the loss is steep just above it
    # (measured in the notebook's 180-step protocol, mean non-pair cosine: 0.88 at the
    # old default 1, 0.66 at 1.5, 0.08 at 1.6, today's default).
    "contrastive": ("neg_margin", (1.6, 2.0, 1.4, 1.8)),
    # Negative weights exp(beta (s - base)), a softmax at temperature 1/beta: at beta = 50
    # they sit on a few negatives (and vanish at base 0.5); the default beta = 2 spreads
    # them over the batch. The grid checks whether a sharper weighting does better.
    "multi_similarity": ("beta", (2.0, 10.0, 25.0, 5.0)),
    # Integer angular margins; 1 is the plain softmax over the proxies.
    "large_margin_softmax": ("margin", (1, 2, 3, 4)),
    "sphereface": ("margin", (1, 2, 3, 4)),
    # Scales derived from the class count when left at None (the registry default), so
    # the grid is absolute: around the derived value (about 6-10 for this corpus's
    # 100-200 training tracks) and up to the papers' own choices.
    "normface": ("scale", (5.0, 10.0, 20.0, 40.0)),
    "l2_softmax": ("alpha", (4.0, 8.0, 16.0, 32.0)),
}
# A loss without a GRIDS entry tunes the first of these options that it has (with a
# non-zero float default; a name made of words joined by "_" that contains one also
# counts), else its first float option; values: the default times these factors.
GENERIC_PARAMETERS = (
    "temperature",
    "scale",
    "gamma",
    "alpha",
    "margin",
    "neg_margin",
    "m",
    "base",
)
GENERIC_FACTORS = (0.5, 2.0, 0.25, 4.0)
DEFAULT_BUDGET = 4


@dataclass(frozen=True)
class Setting:
    """One configuration of one loss: ``params`` override the registry defaults (empty:
    the defaults themselves)."""

    loss: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def is_default(self) -> bool:
        return not self.params

    @property
    def label(self) -> str:
        """``"defaults"`` or ``"name=value"`` (how tables show the setting)."""
        return "defaults" if self.is_default else ", ".join(f"{k}={v:g}" for k, v in self.params)


@dataclass
class Trial:
    """One setting trained on train and scored on val (never on test)."""

    setting: Setting
    # The trainer's validation score of the saved model (model.pt is best.pt, the best
    # validation): the mean mAP of both directions on the val split.
    val_score: float
    steps: int
    train_seconds: float  # the training loop's own time, from the run's summary
    run_dir: Path
    state: str  # "built" or "reused" by this execution


@dataclass
class LossResult:
    """A loss's trials, the chosen one, and the test metrics of the defaults and the
    choice (filled by :meth:`LossZoo.run`)."""

    loss: str
    kind: str
    parameter: str | None  # the tuned parameter (None: nothing to tune)
    grid_source: str  # "table" (GRIDS), "generic" or "none"
    trials: list[Trial]
    chosen: Trial
    test_default: dict[str, float] = field(default_factory=dict)
    test_tuned: dict[str, float] = field(default_factory=dict)

    @property
    def default(self) -> Trial:
        return self.trials[0]

    @property
    def tuning_steps(self) -> int:
        return sum(t.steps for t in self.trials)

    @property
    def tuning_seconds(self) -> float:
        return sum(t.train_seconds for t in self.trials)


def _options(name: str) -> dict[str, Any]:
    from crossmodal.losses.registry import LOSSES

    return LOSSES.options(name)


def _is_float(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def generic_grid(name: str) -> tuple[str, tuple[float, ...]] | None:
    """The parameter of ``name`` a loss without a :data:`GRIDS` entry tunes, and its
    values (the default times :data:`GENERIC_FACTORS`); None when it has no float
    option with a non-zero default."""
    options = {k: v for k, v in _options(name).items() if _is_float(v) and v != 0.0}
    if not options:
        return None
    # An exact name first, then a name containing one ("init_temperature"), in the order
    # of GENERIC_PARAMETERS; else the first float option.
    exact = [p for p in GENERIC_PARAMETERS if p in options]
    partial = [o for p in GENERIC_PARAMETERS for o in options if p in o.split("_")]
    parameter = (exact + partial + list(options))[0]
    default = options[parameter]
    return parameter, tuple(round(default * f, 6) for f in GENERIC_FACTORS)


def tuning_grid(
    name: str, grids: Mapping[str, tuple[str, Sequence[float]]] | None = None
) -> tuple[str | None, tuple[float, ...], str]:
    """``(parameter, values besides the default, source)`` of ``name``: its entry of
    ``grids`` (default :data:`GRIDS`), else :func:`generic_grid`; ``source`` says which
    ("table", "generic", or "none" when there is nothing to tune)."""
    grids = GRIDS if grids is None else grids
    if name in grids:
        parameter, values = grids[name]
        if parameter not in _options(name):
            raise CrossmodalError(
                f"the loss-zoo grid of {name!r} tunes {parameter!r}, which the loss does not "
                f"take (options: {', '.join(_options(name))}): fix GRIDS in "
                "crossmodal/apps/notebooks/loss_zoo.py"
            )
        return parameter, tuple(values), "table"
    found = generic_grid(name)
    if found is None:
        return None, (), "none"
    return found[0], found[1], "generic"


def tuning_settings(
    name: str,
    budget: int = DEFAULT_BUDGET,
    grids: Mapping[str, tuple[str, Sequence[float]]] | None = None,
) -> list[Setting]:
    """The ``budget`` settings ``name`` is tried with: the registry defaults first, then
    the first ``budget - 1`` grid values that differ from the default (fewer only when
    the loss has nothing to tune)."""
    if budget < 1:
        raise CrossmodalError(f"the tuning budget must be >= 1 setting, got {budget}")
    parameter, values, _ = tuning_grid(name, grids)
    settings = [Setting(name)]
    if parameter is None:
        return settings
    default = _options(name)[parameter]
    for value in values:
        if len(settings) == budget:
            break
        if value != default and all(s.params != ((parameter, value),) for s in settings):
            settings.append(Setting(name, ((parameter, value),)))
    return settings


def select(trials: Sequence[Trial]) -> Trial:
    """The trial with the best val score; the earliest on a tie (the defaults first).
    A non-finite score never wins. This is the only choice the protocol makes, and it
    sees nothing of the test split."""
    if not trials:
        raise CrossmodalError("no trials to select from")
    best = trials[0]
    for trial in trials[1:]:
        if math.isfinite(trial.val_score) and (
            not math.isfinite(best.val_score) or trial.val_score > best.val_score
        ):
            best = trial
    return best


def retrieval_metrics(embedded: EmbeddedClips) -> dict[str, float]:
    """R@1, R@10 and median rank in both directions, and the mean cosine of the
    non-matching video/music pairs (near 1 when the space has collapsed)."""
    import torch

    from crossmodal.evaluation.crossmodal_eval import evaluate_embeddings

    report = evaluate_embeddings(embedded.video, embedded.music, embedded.tracks, with_nmi=False)
    sim = embedded.video @ embedded.music.T
    off_diagonal = sim[~torch.eye(len(sim), dtype=torch.bool)]
    return {
        **{f"v→m {k}": float(report["video_to_music"][k]) for k in ("R@1", "R@10", "MedR")},
        **{f"m→v {k}": float(report["music_to_video"][k]) for k in ("R@1", "R@10", "MedR")},
        "mean cos, non-pairs": float(off_diagonal.mean()),
    }


class LossZoo:
    """Runs the protocol on a :class:`~crossmodal.apps.pipeline.Pipeline`'s corpus.

    ``base``: the training config every run starts from, with ``protocol`` (TrainConfig
    fields: epochs, frozen_backbones, eval_every, ...) applied and only the loss term
    changed. ``check_model`` is called on every model loaded for the test split (the
    notebook checks there that frozen backbones did not move).
    """

    def __init__(
        self,
        assets: Pipeline,
        base: TrainConfig,
        protocol: Mapping[str, Any] | None = None,
        *,
        budget: int = DEFAULT_BUDGET,
        grids: Mapping[str, tuple[str, Sequence[float]]] | None = None,
        check_model: Callable[[CrossModalModel], None] | None = None,
        prefix: str = "loss-zoo",
    ) -> None:
        self.assets = assets
        self.base = base
        self.protocol = dict(protocol or {})
        self.budget = budget
        self.grids = grids
        self.check_model = check_model
        self.prefix = prefix

    def config(self, setting: Setting) -> TrainConfig:
        """The training config of ``setting``: ``base`` + ``protocol`` + its loss term."""
        from crossmodal.training.config import LossTerm

        term = LossTerm(setting.loss, params=dict(setting.params))
        return dataclasses.replace(self.base, losses=[term], **self.protocol)

    def run_prefix(self, setting: Setting) -> str:
        """``<prefix>-<loss>-<hash of the loss's constructor defaults>``: the cache key of
        a run covers its config, where a default setting is just the loss's name, so the
        defaults' hash keeps a run from being reused after a default changes."""
        defaults = repr(sorted(_options(setting.loss).items()))
        return f"{self.prefix}-{setting.loss}-{hashlib.sha256(defaults.encode()).hexdigest()[:8]}"

    def trial(self, setting: Setting) -> Trial:
        """Train ``setting`` on the train split (or reuse its cached run) and read the
        trainer's validation score of the saved model."""
        run_dir = self.assets.trained_run(self.config(setting), prefix=self.run_prefix(setting))
        state = self.assets.timings.get(run_dir.name, ("reused", 0.0))[0]
        summary = json.loads((run_dir / "summary.json").read_text())
        if summary.get("best_score") is None:
            raise CrossmodalError(
                f"the run of {setting.loss} ({setting.label}) has no validation score: the "
                "loss zoo needs a corpus with a val split and a validation during training"
            )
        return Trial(
            setting=setting,
            val_score=float(summary["best_score"]),
            steps=int(summary["steps"]),
            train_seconds=float(summary["train_seconds"]),
            run_dir=run_dir,
            state=state,
        )

    def tune(self, name: str) -> LossResult:
        """Every setting of ``name`` trained and scored on val, and the chosen one."""
        from crossmodal.losses import loss_kind

        parameter, _, source = tuning_grid(name, self.grids)
        trials = [self.trial(s) for s in tuning_settings(name, self.budget, self.grids)]
        return LossResult(name, loss_kind(name), parameter, source, trials, select(trials))

    def test_metrics(self, trial: Trial) -> dict[str, float]:
        """:func:`retrieval_metrics` of ``trial``'s model on the test split."""
        from crossmodal.inference import embed_dataset
        from crossmodal.model import CrossModalModel

        model = CrossModalModel.load(trial.run_dir / "model.pt").eval()
        if self.check_model is not None:
            self.check_model(model)
        return retrieval_metrics(embed_dataset(model, self.assets.dataset("test", model)))

    def run(self, names: Iterable[str] | None = None) -> list[LossResult]:
        """The whole protocol for ``names`` (default: every registered loss): tune on
        val, then measure the defaults and the choice on test."""
        from crossmodal.losses import list_losses

        results = []
        for name in list_losses() if names is None else names:
            result = self.tune(name)
            result.test_default = self.test_metrics(result.default)
            result.test_tuned = (
                result.test_default
                if result.chosen is result.default
                else self.test_metrics(result.chosen)
            )
            results.append(result)
        return results


def mean_r1(metrics: Mapping[str, float]) -> float:
    """R@1 averaged over the two directions."""
    return (metrics["v→m R@1"] + metrics["m→v R@1"]) / 2


def mean_medr(metrics: Mapping[str, float]) -> float:
    """Median rank averaged over the two directions."""
    return (metrics["v→m MedR"] + metrics["m→v MedR"]) / 2


def markdown_table(results: Sequence[LossResult], untrained: Mapping[str, float]) -> str:
    """The defaults-vs-tuned table of a run as Markdown (docs/notebooks.md keeps it):
    one row per loss, after a row for the untrained network."""
    lines = [
        "| loss | chosen on val | val mAP, defaults → chosen | test R@1, defaults | tuned "
        "| test MedR, defaults | tuned | non-pair cos, defaults | tuned | tuning steps | s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| (untrained) | | | {mean_r1(untrained):.3f} | | {mean_medr(untrained):.1f} | "
        f"| {untrained['mean cos, non-pairs']:.2f} | | | |",
    ]
    for r in results:
        d, t = r.test_default, r.test_tuned
        lines.append(
            f"| {r.loss} | {r.chosen.setting.label} | {r.default.val_score:.3f} → "
            f"{r.chosen.val_score:.3f} | {mean_r1(d):.3f} | {mean_r1(t):.3f} | "
            f"{mean_medr(d):.1f} | {mean_medr(t):.1f} | {d['mean cos, non-pairs']:.2f} | "
            f"{t['mean cos, non-pairs']:.2f} | {r.tuning_steps} | {r.tuning_seconds:.1f} |"
        )
    return "\n".join(lines)
