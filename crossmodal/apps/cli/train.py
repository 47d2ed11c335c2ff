"""`crossmodal train`: learn the shared video–music space from a manifest."""

from __future__ import annotations

import argparse

from crossmodal.apps.cli._args import positive_int

EPILOG = """\
Any config field can be overridden after the options, as --key value (or --key=value)
with a dotted path or an unambiguous field name, e.g.:
  crossmodal train --data corpus/manifest.jsonl --out runs/a --epochs 30 --lr 1e-3 \\
      --model.embed_dim 256 --data.sampler pk --batch_size 64
The objective is a list of loss terms (name, weight, key: track|label, symmetric, miner,
params), e.g. InfoNCE on tracks plus a small ArcFace term on mood labels:
  --losses '[{name: info_nce}, {name: npair}, {name: arcface, weight: 0.1, key: label}]'
Print every field with its value: crossmodal train --print-config [--config cfg.yaml].

Length: by default training stops on convergence (validation every
--budget.eval_every_steps, patience --budget.patience_steps, within --budget.min_steps
and --budget.max_steps and --budget.max_minutes (9; --max_minutes replaces it), ending
with a learning-rate cool-down);
--epochs N trains exactly N epochs instead. A manifest without a 'val' split gets one
carved from 'train' (by track, stored in RUN_DIR/carve.json).

Resume: crossmodal train --out runs/a --resume [--budget.max_steps 5000]. The run keeps
its stored config; only where the data lives and how long to train may change.
Ctrl-C finishes the current step, saves RUN_DIR/last.pt and exits (130); --resume
continues exactly where it stopped. Distributed (one process per GPU, or CPU with gloo):
  torchrun --nproc_per_node=2 -m crossmodal train --data … --out …
(--batch_size is per process; rank 0 validates and writes the files.)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the two-tower model on a manifest",
        description=(
            "Train the video and music towers into one embedding space (default objective:\n"
            "symmetric InfoNCE + symmetric N-pair on tracks for the sync part, symmetric\n"
            "NormFace on mood labels for the vibe part; unlabelled corpora: the first two\n"
            "only). Writes to --out: config.yaml, last.pt (resumable), best.pt (best\n"
            "validation score), model.pt (the best model, for evaluate/embed/index),\n"
            "metrics.jsonl, curves.png and summary.json."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        metavar="MANIFEST|DIR",
        help="manifest (.jsonl) or folder of videos with soundtracks (= --data.manifest)",
    )
    parser.add_argument("--out", metavar="RUN_DIR", help="run folder (created)")
    parser.add_argument(
        "--config", metavar="YAML", help="config file (fields as in --print-config)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last.pt"
    )
    parser.add_argument(
        "--stop-after-epoch",
        type=positive_int,
        metavar="N",
        help="stop (resumably) once N epochs are done; the budget is unchanged",
    )
    parser.add_argument(
        "--baseline",
        choices=["sync", "none"],
        default="sync",
        help="non-learned baseline scored on the validation clips at the end, beside the "
        "model (default: sync, the onset/motion synchrony of `evaluate --baseline sync`)",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the resulting config as YAML and exit (with --resume: the run's)",
    )
    parser.set_defaults(func=run, accepts_overrides=True)


def run(args: argparse.Namespace) -> int:
    import logging
    import os

    from crossmodal.config import load_config, to_yaml
    from crossmodal.errors import CrossmodalError
    from crossmodal.training.config import TrainConfig

    overrides = list(args.config_overrides)
    if args.data:
        overrides += ["--data.manifest", args.data]
    cfg = load_config(TrainConfig, args.config, overrides)
    if args.stop_after_epoch is not None and args.stop_after_epoch < 1:
        raise CrossmodalError(f"--stop-after-epoch must be >= 1, got {args.stop_after_epoch}")
    explicit = None
    if (args.resume or not args.print_config) and not args.out:
        raise CrossmodalError("--out RUN_DIR is required")
    if int(os.environ.get("RANK", "0")) > 0:
        # torchrun: rank 0 speaks for the run.
        logging.getLogger("crossmodal").setLevel(logging.WARNING)
    if args.resume:
        from crossmodal.checkpoint import load_checkpoint

        explicit = _explicit_fields(args.config, overrides)
        if args.print_config:
            from crossmodal.config import from_dict
            from crossmodal.training.config import config_for_resume

            stored = load_checkpoint(os.path.join(args.out, "last.pt"))["train_config"]
            cfg = config_for_resume(from_dict(TrainConfig, stored), cfg, explicit)
    if args.print_config:
        print(to_yaml(cfg), end="")
        return 0
    from crossmodal.training.trainer import Trainer

    trainer = Trainer(cfg, args.out, resume=args.resume, explicit=explicit)
    result = trainer.fit(stop_after_epoch=args.stop_after_epoch)
    if not trainer.is_main:
        return 0
    minutes = result.train_seconds / 60
    resumable = "; --resume continues" if result.stop_reason == "time" else ""
    print(
        f"trained {result.epochs_done} epochs ({result.steps} steps) in {minutes:.1f} min "
        f"({result.stop_message}{resumable}); run folder: {args.out}"
    )
    if result.best_val is not None:
        _report_validation(result.best_val, trainer.val_set.records, args.baseline)
    return 0


def _report_validation(best_val: dict, val_records: list, baseline: str) -> None:
    """The best model's validation table beside the baseline's; one warning line when the
    model does not beat it."""
    import logging

    from crossmodal.evaluation.crossmodal_eval import format_report

    baselines = {}
    if baseline == "sync":
        from crossmodal.evaluation.baseline import behind_baseline, sync_baseline

        baselines["sync"] = sync_baseline(val_records)
    print("validation of the kept model (model.pt):")
    print(format_report(best_val, baselines))
    if baselines:
        behind = behind_baseline(best_val, baselines["sync"])
        if behind:
            logging.getLogger("crossmodal.train").warning(
                "the model does not beat the non-learned sync baseline on validation (%s): "
                "train longer (--budget.min_steps), or check the data",
                "; ".join(behind),
            )


def _explicit_fields(yaml_path: str | None, overrides: list[str]) -> set[tuple[str, ...]]:
    """Config fields the user set, by the YAML file or an override."""
    import yaml

    from crossmodal.config import field_paths, parse_overrides, resolve_key
    from crossmodal.training.config import TrainConfig

    explicit = {resolve_key(TrainConfig, key) for key, _ in parse_overrides(overrides)}
    if yaml_path is not None:
        with open(yaml_path, encoding="utf-8") as fh:
            loaded = yaml.safe_load(fh) or {}
        for path in field_paths(TrainConfig):
            node = loaded
            for part in path:
                if not isinstance(node, dict) or part not in node:
                    break
                node = node[part]
            else:
                explicit.add(path)
    return explicit
