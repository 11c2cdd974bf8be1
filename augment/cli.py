"""The `augment` command: `augment run`, `augment evaluate`, `augment export` and `augment demo`.

Exit status: 0 success; 2 bad input or config (message on stderr, no output folder left);
1 unexpected failure; 130 interrupted (Ctrl-C), 143 terminated (SIGTERM): rerun the same command to resume.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path

from augment.errors import AugmentError
from augment.version import __version__

DEMO_OUT = Path("data/runs")
# The demo's settings: an 8 px ACGAN small enough to train well on two CPU cores in about a minute.
# On 8 px digits logistic regression is the stronger external judge (test balanced accuracy 0.894 vs
# 0.853 for the CNN recipe on digits-LT) and takes no time to fit.
DEMO_CONFIG = {
    "model": {"width": 32, "latent_dim": 32},
    "train": {"steps": 2000, "batch_size": 64, "checkpoint_every": 250, "log_every": 50},
    "score": {"external": "logreg"},
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="augment", description="Balance a labeled image dataset with a conditional GAN.")
    p.add_argument("--version", action="version", version=f"augment {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", metavar="FILE.toml", help="TOML file of settings (see README)")
        sp.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting, e.g. --set train.steps=500 (repeatable)")
        sp.add_argument("--quiet", action="store_true", help="no progress bar")

    d = sub.add_parser("demo", help="augment an imbalanced view of scikit-learn's digits (no arguments needed)")
    d.add_argument("--out", type=Path, help=f"output folder (default: {DEMO_OUT}/demo-<time>)")
    common(d)
    e = sub.add_parser("evaluate", help="downstream arms on a finished run, scored on a test set")
    e.add_argument("--run", required=True, type=Path, help="an augment output folder")
    e.add_argument("--test", required=True, metavar="SPEC", help="the test set (any SPEC, e.g. data.npz:test)")
    e.add_argument("--classifiers", default="logreg,cnn", help="comma-separated: logreg, cnn")
    e.add_argument("--seeds", type=int, default=1)
    e.add_argument("--cnn-steps", type=int, default=1000)
    e.add_argument("--cnn-augmentation", default="shift", choices=["shift", "standard", "none"],
                   help="every CNN arm's augmentation: the recipe's shifts of up to 1/8 of the side, 'standard' "
                        "(+-2 px, +-10 degrees) or none")
    e.add_argument("--quiet", action="store_true", help="no progress lines")
    from augment.export import FORMATS  # no torch: the parser stays quick

    x = sub.add_parser("export", help=f"write a subset of a finished run as {', '.join(FORMATS)}")
    x.add_argument("--run", required=True, type=Path, help="an augment output folder")
    x.add_argument("--to", required=True, type=Path, help="where to write (must not exist)")
    x.add_argument("--format", required=True, choices=list(FORMATS),
                   help="; ".join(f"{f.name}: {f.help}" for f in FORMATS.values()))
    x.add_argument("--synthetic-only", action="store_true", help="only synthetic rows")
    x.add_argument("--kept-only", action="store_true", help="only kept rows (drops rejected candidates)")
    x.add_argument("--quiet", action="store_true")
    r = sub.add_parser("run", help="augment a dataset")
    r.add_argument("--data", required=True, metavar="SPEC",
                   help="ImageFolder dir, .csv/.parquet manifest, .npz, 'digits' or torchvision:NAME:ROOT")
    r.add_argument("--out", required=True, type=Path, help="output folder (must not exist or be empty)")
    r.add_argument("--dry-run", action="store_true", help="check the data, output and settings, print the plan, "
                   "device and an estimate of the training time, and write nothing")
    common(r)
    return p


class _Progress:
    """A tqdm bar over training steps plus one line per stage, on stderr."""

    def __init__(self, quiet: bool):
        self.quiet, self.bar = quiet, None

    def stage(self, name: str) -> None:
        self.close()
        if not self.quiet:
            print(f"[augment] {name} ...", file=sys.stderr, flush=True)

    def step(self, step: int, total: int, row: dict | None) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=step - 1, unit="step", file=sys.stderr, dynamic_ncols=True)
        self.bar.update(1)
        if row is not None:
            self.bar.set_postfix(d=f"{row['d_loss']:.3f}", g=f"{row['g_loss']:.3f}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _print_summary(summary: dict, started: float, downstream=None) -> None:
    from augment.report import TRAIN_ON_IT, budget_line, left_out_line, stage_seconds_line, summary_table

    left_out = left_out_line(summary)
    if left_out:  # first, so that an empty 'kept' column is explained before it is seen
        print(f"{left_out}\n")
    table = summary_table(summary)
    print(table.to_string(index=False))
    if downstream is not None:
        print("\nDownstream logistic regression on the held-out test split:")
        print(downstream.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    share = summary.get("synthetic_share")
    if share:
        print(f"\nSynthetic share: {share['share']} ({share['reason']}).")
    bought = budget_line(summary.get("training") or {}, summary.get("quality"))
    if bought:
        print(f"\n{bought}")
    timing = stage_seconds_line(summary.get("stage_seconds") or {})
    if timing and not summary.get("up_to_date"):
        print(f"\n{timing}")
    if summary["shortfall"]:
        print(f"\nWARNING: classes short of the plan: {summary['shortfall']}")
    if summary.get("up_to_date"):
        print("\nUp to date: the same data and settings produced this output before; nothing was redone.")
    print(f"\n{TRAIN_ON_IT.replace('OUT', repr(str(summary['out'])))}")
    print(f"\nOutput: {summary['out']}  ({summary['manifest_rows']} manifest rows; "
          f"checkpoint step {summary['checkpoint_step']}; {time.perf_counter() - started:.0f} s)")


def _demo(args, progress: _Progress) -> None:
    from augment.config import build_config
    from augment.data import digits_lt
    from augment.demo import downstream_section
    from augment.pipeline import Stages, run_pipeline

    cfg = build_config(args.config, args.sets, base=DEMO_CONFIG)
    out = args.out or DEMO_OUT / time.strftime("demo-%Y%m%d-%H%M%S")
    train, test = digits_lt(cfg.seed, cfg.image)
    started = time.perf_counter()
    result: dict = {}

    def before_export(layout):
        result["downstream"], section = downstream_section(layout, test, cfg.seed)
        return [section]

    stages = Stages(on_progress=progress.step, on_stage=progress.stage, before_export=before_export)
    summary = run_pipeline(train, cfg, out, stages)
    progress.close()
    _print_summary(summary, started, result.get("downstream"))


def _run(args, progress: _Progress) -> None:
    from augment.config import build_config
    from augment.pipeline import Stages, run_pipeline

    cfg = build_config(args.config, args.sets)
    if args.dry_run:
        _print_dry_run(args, cfg)
        return
    started = time.perf_counter()
    summary = run_pipeline(args.data, cfg, args.out, Stages(on_progress=progress.step, on_stage=progress.stage),
                           inputs=[Path(args.config)] if args.config else [])
    progress.close()
    _print_summary(summary, started)


def _print_dry_run(args, cfg) -> None:
    import json

    import pandas as pd

    from augment.dry_run import dry_run

    plan = dry_run(args.data, cfg, args.out, [Path(args.config)] if args.config else [])
    print(f"Dry run of {plan.source} -> {args.out}: nothing was written.\n")
    print(pd.DataFrame(plan.classes).to_string(index=False))
    print(f"\nDevice {plan.device}, precision {plan.precision}; {plan.gans} GAN(s) of {cfg.train.steps} steps at "
          f"{plan.seconds_per_step * 1000:.0f} ms a step (measured): training about {plan.training_seconds / 60:.1f} "
          "min, plus generation, scoring and the amount probe.")
    for note in plan.notes:
        print(f"\nNote: {note}")
    print("\nSettings:\n" + json.dumps(cfg.to_dict(), indent=2))


def _evaluate(args, progress: _Progress) -> None:
    from augment.evaluate import evaluate_run

    classifiers = tuple(c.strip() for c in args.classifiers.split(",") if c.strip())
    bad = [c for c in classifiers if c not in ("logreg", "cnn")]
    if bad or not classifiers:
        from augment.errors import ConfigError

        raise ConfigError(f"--classifiers takes logreg and/or cnn. Got {args.classifiers!r} instead.")
    progress.stage(f"evaluate ({', '.join(classifiers)}; {args.seeds} seed(s))")
    summary, _ = evaluate_run(args.run, args.test, classifiers, args.seeds, args.cnn_steps,
                              augmentation=args.cnn_augmentation)
    cols = ["classifier", "arm", "balanced_accuracy_mean", "balanced_accuracy_std", "macro_f1_mean", "tail_recall_mean"]
    print(summary[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for row in summary[summary["arm"] == "augmented"].to_dict(orient="records"):
        ros, best = _interval(row, "minus_random_oversampling"), _interval(row, "minus_best_classical")
        print(f"{row['classifier']}: augmented - random oversampling {ros}; - best classical arm "
              f"({row['best_classical']}) {best}  (paired bootstrap 95% intervals; one holding 0 is noise)")
    print(f"\nWritten: {args.run / 'downstream.csv'}, {args.run / 'downstream.json'}; report updated.")


def _interval(row: dict, name: str) -> str:
    if row.get(name) is None or row[name] != row[name]:  # absent or NaN
        return "n/a"
    return f"{row[name]:+.4f} [{row[f'{name}_low']:+.4f}, {row[f'{name}_high']:+.4f}]"


def _export(args, progress: _Progress) -> None:
    from augment.export import export_run

    r = export_run(args.run, args.to, args.format, args.synthetic_only, args.kept_only)
    print(f"Exported {r['rows']} images ({r['synthetic']} synthetic; classes {r['classes']}) as {r['format']} "
          f"to {r['to']}")


class Terminated(BaseException):
    """SIGTERM, raised where the program is, like Ctrl-C, so that every temp file and folder is cleaned up."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="[augment] %(levelname)s: %(message)s")
    progress = _Progress(args.quiet)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        {"demo": _demo, "run": _run, "evaluate": _evaluate, "export": _export}[args.command](args, progress)
    except AugmentError as exc:
        progress.close()
        print(f"augment: error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as exc:
        progress.close()
        how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        print(f"augment: {how}; rerun the same command to resume from the last checkpoint.", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except Exception as exc:  # a bug, not the user's doing: say so, keep the traceback
        progress.close()
        import traceback

        traceback.print_exc()
        print(f"augment: unexpected failure ({type(exc).__name__}: {exc}). Please report it with the "
              "traceback above.", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
