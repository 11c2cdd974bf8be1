"""MNIST-LT, the headline quality benchmark (docs/benchmarks.md): does augment's output beat the classical fixes?

Per seed: the train split of ../shared/datasets/mnist.npz subsampled to 4000, 2000, 1000, 750, 500, 350,
200, 100, 60, 40 images of classes 0..9 (without replacement); test: the full MNIST test split.
augment runs end to end on the LT split with its defaults (every class planned up to 4000, the synthetic
share 'auto') unless --set says otherwise; its output is read back from the exported files. Arms, each
with the same downstream classifier and the same seeds: imbalanced; random oversampling; class-weighted
loss; SMOTE (imbalanced-learn, on pixels); post-hoc logit adjustment; deferred re-weighting (CNN); augmented
(the output as a user receives it: real and kept synthetic images with the manifest's weights); augmented,
all kept synthetic (every candidate the selection kept, whatever the share); the stacked arms
(class-weighted + synthetic, deferred re-weighting + synthetic, both with every kept synthetic image);
synthetic only (where every class has synthetic images); full balanced real, 4000 per class from the
whole train split (the upper bound). Classifiers: logistic regression on pixels and the SmallCNN recipe.
Prints mean ± std over seeds, per-class recall, the share of the gap closed, and every arm's paired
bootstrap 95% interval against random oversampling and the best classical arm.

    python benchmarks/mnist_lt.py [--seeds 5] [--first-seed 0] [--save rows.csv] [--classifiers logreg,cnn]
        [--cnn-steps 1000] [--cnn-width 16] [--cnn-augmentation shift|standard|none] [--set key=value ...]
        [--keep DIR]
    python benchmarks/mnist_lt.py --from-csv rows_a.csv rows_b.csv   # summarise rows saved by earlier runs
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from shared_data import MNIST

from augment.config import build_config
from augment.data import LabeledImages
from augment.data.longtail import MNIST_LT_COUNTS, subsample_per_class
from augment.downstream import (
    CLASSICAL,
    build_arms,
    chosen_arms,
    evaluate_arms,
    gap_closed,
    paired_differences,
    summarise,
    tail_classes,
    weighted_output,
)
from augment.paired import Difference, paired_bootstrap
from augment.pipeline import run_pipeline
from augment.precision import resolve_precision
from augment.provenance import package_versions
from augment.stages.export import summary_from_output

# the default model; what a quiet benchmark machine should use (all cores); scores the downstream arms do not read off
GAN = ["train.steps=3000", "train.checkpoint_every=250", "train.log_every=50", "train.threads=0", "score.cas=false",
       "score.detector=false"]
PER_CLASS = 4000


def split(seed: int, per_class: int = PER_CLASS):
    d = np.load(MNIST)
    x, y = d["x_train"], d["y_train"].astype(np.int64)
    lt = subsample_per_class(y, MNIST_LT_COUNTS, seed)
    full = subsample_per_class(y, [per_class] * 10, seed + 1000)  # the whole train split: 4000 of each class
    names = [str(i) for i in range(10)]
    train = LabeledImages(torch.from_numpy(x[lt])[:, None].contiguous(), torch.from_numpy(y[lt]), names,
                          [f"mnist-{i:06d}" for i in lt], f"mnist-lt(seed={seed})")
    return train, (x[full][:, None], y[full]), (d["x_test"][:, None], d["y_test"].astype(np.int64))


def read_output(out: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The output as a user receives it, read back from its files: real rows, kept synthetic rows and the
    synthetic rows the amount left out (reject_reason 'share'), each as (images, labels, weights)."""
    m = pd.read_parquet(out / "manifest.parquet")
    parts = {"real": m[~m["is_synthetic"]], "kept": m[m["is_synthetic"] & m["kept"]],
             "share": m[m["is_synthetic"] & (m["reject_reason"] == "share")]}

    def images(rows: pd.DataFrame) -> np.ndarray:
        """(N, C, H, W) uint8, grayscale or RGB as written; an empty part takes the real images' shape."""
        if rows.empty:
            return np.zeros((0, *images(parts["real"].iloc[:1]).shape[1:]), np.uint8)
        x = np.stack([np.asarray(Image.open(out / p)) for p in rows["path"]])
        return x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)

    return {k: (images(r), r["label"].to_numpy(np.int64), r["weight"].to_numpy()) for k, r in parts.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed .. first-seed + seeds - 1")
    p.add_argument("--save", type=Path, help="also write every seed's per-arm rows to this CSV")
    p.add_argument("--classifiers", default="logreg,cnn")
    p.add_argument("--cnn-steps", type=int, default=1000)
    p.add_argument("--cnn-width", type=int, default=16)
    p.add_argument("--cnn-augmentation", default="shift", choices=["shift", "standard", "none"],
                   help="every CNN arm's: the recipe's shifts (up to 1/8 of the side) or 'standard' (+-2 px, +-10 deg)")
    p.add_argument("--set", dest="sets", action="append", default=[])
    p.add_argument("--per-class", type=int, default=PER_CLASS, help="balanced size per class (smoke runs: smaller)")
    p.add_argument("--mix-ratios", default="", help="extra augmented arms, e.g. '1,2': each class takes at most "
                   "r x its real count of synthetic images and oversamples its real ones for the rest")
    p.add_argument("--keep", type=Path, help="keep each seed's augment output under this folder")
    p.add_argument("--reuse", action="store_true", help="with --keep: read a seed's output kept by an earlier run "
                   "instead of running augment again (to add arms to saved rows; merge them with --from-csv)")
    p.add_argument("--arms", default="", help="only these arms (names separated by ';', as some hold a comma), "
                   "e.g. to add a new arm to saved rows")
    p.add_argument("--label", default="", help="append ' [LABEL]' to the names of the arms with synthetic images, "
                   "so that rows of another recipe merge with saved ones under --from-csv (paired by seed)")
    p.add_argument("--base-label", default="", help="with --from-csv: compare each labelled arm with the same arm "
                   "under this label (default: the same arm unlabelled)")
    p.add_argument("--from-csv", type=Path, nargs="+", help="train nothing: print the summary of rows saved with "
                   "--save by earlier invocations (e.g. seeds run on different days)")
    args = p.parse_args()
    classifiers = tuple(c.strip() for c in args.classifiers.split(","))
    if args.from_csv:
        rows = pd.concat([pd.read_csv(f) for f in args.from_csv], ignore_index=True)
        if rows.duplicated(["classifier", "arm", "seed"]).any():
            sys.exit(f"--from-csv: the files {[str(f) for f in args.from_csv]} repeat a (classifier, arm, seed) row; "
                     "pass each seed's rows once")
        rows["per_class_recall"] = rows["per_class_recall"].map(json.loads)
        seeds = sorted(int(s) for s in rows["seed"].unique())
        print(f"# MNIST-LT rows from {', '.join(str(f) for f in args.from_csv)}: seeds {seeds}")
        present = set(rows["classifier"])
        report(rows, tuple(c for c in classifiers if c in present))
        predictions, y_test = load_predictions(args.from_csv)
        if predictions:
            print_paired(rows, predictions, y_test, args.base_label)
        return
    v = package_versions()
    sets = [*GAN, *args.sets]
    print(f"# MNIST-LT benchmark: {args.seeds} seed(s); device {'cuda' if torch.cuda.is_available() else 'cpu'} "
          f"({platform.machine()}, {torch.get_num_threads()} threads); torch {v['torch']}, scikit-learn "
          f"{v['scikit-learn']}, imbalanced-learn {v['imbalanced-learn']}", flush=True)
    print(f"# augment settings: {sets}; downstream: logreg = LogisticRegression(C=1, max_iter=300) on pixels, "
          f"cnn = SmallCNN(width {args.cnn_width}), {args.cnn_steps} steps of batch 128, augmentation "
          f"{args.cnn_augmentation!r}, precision {resolve_precision(torch.device('cpu'), 'auto')}; the augmented arm "
          "draws its batches by the manifest's weights (a weighted sampler)", flush=True)
    runs, meta_rows, predictions = [], [], {}
    root = args.keep or Path(tempfile.mkdtemp(prefix="mnist_lt_"))
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        train, (x_full, y_full), (x_test, y_test) = split(seed, args.per_class)
        cfg = build_config(sets=[f"seed={seed}", *sets])
        out = root / f"seed{seed}"
        t0 = time.perf_counter()
        if args.reuse and (out / "dataset.json").exists():
            summary = summary_from_output(out)
        else:
            summary = run_pipeline(train, cfg, out)
        seconds = time.perf_counter() - t0
        got = read_output(out)
        (x, y, w_real), (xs, ys, w_syn) = got["real"], got["kept"]
        # the candidates the selection kept, whether or not the amount took them: what "all synthetic" means
        x_all_syn, y_all_syn = np.concatenate([xs, got["share"][0]]), np.concatenate([ys, got["share"][1]])
        arms = build_arms(x, y, seed, x_full=x_full, y_full=y_full,
                          x_syn=x_all_syn if len(np.unique(y_all_syn)) == 10 else None, y_syn=y_all_syn,
                          x_aug=x_all_syn, y_aug=y_all_syn,
                          mix_ratios=tuple(float(r) for r in args.mix_ratios.split(",") if r.strip()))
        arms["augmented, all kept synthetic"] = arms.pop("augmented")
        arms["augmented"] = weighted_output(x, y, xs, ys, weights=np.concatenate([w_real, w_syn]))
        if args.arms:
            try:
                arms = chosen_arms(arms, args.arms)
            except ValueError as exc:
                sys.exit(str(exc))
        if args.label:
            arms = {(f"{a} [{args.label}]" if a not in CLASSICAL and not a.startswith("full") else a): arm
                    for a, arm in arms.items()}
        df = evaluate_arms(arms, x_test, y_test, 10, tail_classes(y, 10), classifiers, seed, predictions=predictions,
                           cnn_steps=args.cnn_steps, cnn_width=args.cnn_width, augmentation=args.cnn_augmentation)
        runs.append(df if "seed" in df.columns else df.assign(seed=seed))
        if args.save:  # after every seed, so that an interrupted run keeps what it measured
            pd.concat(runs, ignore_index=True).to_csv(args.save, index=False)
            save_predictions(predictions, y_test, args.save)
        meta = json.loads((out / "dataset.json").read_text())
        meta_rows.append({"seed": seed, "pipeline_s": round(seconds), "train_s": meta["training"]["seconds"],
                          "steps": meta["training"]["steps"],
                          "precision": meta["training"].get("precision"), "best_step": meta["checkpoint"]["step"],
                          "kept": int(sum(summary["kept"].values())), "short": summary["shortfall"],
                          "external_bacc": meta["external_classifier"]["holdout_balanced_accuracy"],
                          "synthetic_share": (meta.get("synthetic_share") or {}).get("share"),
                          "kept_in_output": int(len(ys))})
        print(f"seed {seed}: pipeline {seconds:.0f} s (training {meta['training']['seconds']:.0f} s in "
              f"{meta['training'].get('precision')}, best step "
              f"{meta['checkpoint']['step']}); kept {meta_rows[-1]['kept']}; short {summary['shortfall'] or 'none'}; "
              "balanced accuracy " + ", ".join(f"{r['classifier']}:{r['arm']} {r['balanced_accuracy']:.4f}"
                                               for _, r in df.iterrows()), flush=True)
    all_runs = pd.concat(runs, ignore_index=True)
    report(all_runs, classifiers)
    print_paired(all_runs, predictions, y_test)
    print("\nruns: " + json.dumps(meta_rows))


def save_predictions(predictions: dict, y_test: np.ndarray, csv: Path) -> None:
    """Every (classifier, arm, seed) prediction beside the rows CSV, for paired intervals with --from-csv."""
    arrays = {f"{c}|{a}|{s}": p for (c, a, s), p in predictions.items()}
    np.savez_compressed(Path(csv).with_suffix(".predictions.npz"), y_test=y_test, **arrays)


def evaluate_seed(arms: dict, x_test: np.ndarray, y_test: np.ndarray, k: int, tail: list[int],
                  classifiers: tuple[str, ...], seed: int, runs: list, predictions: dict, save: Path | None,
                  note: str = "", **cnn_kw) -> pd.DataFrame:
    """Evaluate one seed's arms, add its rows to `runs`, save every row so far (and the predictions) to
    `save`, and print a line; a run cut short keeps its finished seeds."""
    t0 = time.perf_counter()
    df = evaluate_arms(arms, x_test, y_test, k, tail, classifiers, seed, predictions=predictions, **cnn_kw)
    runs.append(df)
    if save:
        pd.concat(runs, ignore_index=True).to_csv(save, index=False)
        save_predictions(predictions, y_test, save)
    print(f"seed {seed}: {note}arms {time.perf_counter() - t0:.0f} s; " + ", ".join(
        f"{r['arm']} {r['balanced_accuracy']:.4f}" for _, r in df.iterrows()), flush=True)
    return df


def report_saved(csvs: list[Path], title: str, classifiers: tuple[str, ...]) -> None:
    """--from-csv: the summary and paired intervals of rows (and predictions) saved by earlier runs."""
    rows = pd.concat([pd.read_csv(f) for f in csvs], ignore_index=True)
    rows["per_class_recall"] = rows["per_class_recall"].map(json.loads)
    print(f"# {title} rows from {', '.join(map(str, csvs))}: seeds {sorted(int(s) for s in rows['seed'].unique())}")
    report(rows, tuple(c for c in classifiers if c in set(rows["classifier"])))
    predictions, y_test = load_predictions(csvs)
    print_paired(rows, predictions, y_test)


def load_predictions(csvs: list[Path]) -> tuple[dict, np.ndarray | None]:
    predictions, y_test = {}, None
    for csv in csvs:
        path = Path(csv).with_suffix(".predictions.npz")
        if path.exists():
            with np.load(path) as z:
                y_test = z["y_test"]
                for key in z.files:
                    if key != "y_test":
                        c, a, s = key.split("|")
                        predictions[(c, a, int(s))] = z[key]
    return predictions, y_test


def print_paired(all_runs: pd.DataFrame, predictions: dict, y_test: np.ndarray, base_label: str = "") -> None:
    """Every arm minus random oversampling and minus the best classical arm, with paired bootstrap 95%
    intervals (seeds and test images resampled; the arms share seeds and the test split); every
    '[LABEL]' arm minus the same arm unlabelled, or, with base_label, minus the same arm '[base_label]'."""
    paired = paired_differences(y_test, predictions, summarise(all_runs))
    print("\npaired differences in balanced accuracy [95% interval]; an interval holding 0 is noise:")
    for r in paired.to_dict(orient="records"):
        cells = [f"{name} {Difference(r[c], r[c + '_low'], r[c + '_high'])}"
                 for c, name in (("minus_random_oversampling", "- random oversampling"),
                                 ("minus_best_classical", f"- best classical ({r['best_classical']})"))
                 if c in r and r[c] == r[c]]
        print(f"  {r['classifier']:7s} {r['arm']:34s} " + "; ".join(cells))
    labelled = [(c, a, a.rsplit(" [", 1)[0] + (f" [{base_label}]" if base_label else ""))
                for c, a in all_runs[["classifier", "arm"]].drop_duplicates().itertuples(index=False)
                if a.endswith("]") and " [" in a and not a.endswith(f" [{base_label}]")]
    for classifier, arm, base in labelled:  # a --label recipe against the same arm of the saved recipe, seed by seed
        seeds = sorted({s for (c, a, s) in predictions if c == classifier and a == arm})
        if not all((classifier, base, s) in predictions for s in seeds):
            continue
        d = paired_bootstrap(*(np.stack([predictions[(classifier, name, s)] == y_test for s in seeds])
                               for name in (arm, base)), y_test)
        print(f"  {classifier:7s} {arm} - {base}: {d} (seeds {seeds})")


def report(all_runs: pd.DataFrame, classifiers: tuple[str, ...]) -> None:
    """Print mean ± std per arm, per-class recall and the share of the gap closed, per classifier."""
    table = summarise(all_runs)
    print(f"\n{'classifier':10s} {'arm':34s} {'balanced acc':>17s} {'macro-F1':>17s} {'tail recall':>17s}")
    for _, r in table.iterrows():
        print(f"{r['classifier']:10s} {r['arm']:34s} " + " ".join(
            f"{r[m + '_mean']:.4f} ± {r[m + '_std']:.4f}" for m in ("balanced_accuracy", "macro_f1", "tail_recall")))
    print("\nper-class recall (mean over seeds):")
    per_class = all_runs.groupby(["classifier", "arm"], sort=False)["per_class_recall"].apply(
        lambda s: np.round(np.mean(np.stack(s.to_numpy()), axis=0), 3).tolist())
    for (clf, arm), rec in per_class.items():
        print(f"  {clf:7s} {arm:34s} {rec}")
    for clf in classifiers:
        g = gap_closed(table, clf)
        if not g:  # --arms without the augmented or any classical arm: nothing to compare here
            continue
        bound = (f"; upper bound {g['upper_bound']:.4f}; share of the gap closed {g['gap_closed']:.1%}"
                 if "upper_bound" in g else "")  # --arms may leave the upper bound out
        print(f"\n{clf}: best classical arm '{g['best_classical']}' {g['best_classical_value']:.4f}; augmented "
              f"{g['augmented']:.4f}{bound}; augmented - random oversampling "
              f"{g['augmented_minus_random_oversampling']:+.4f}")


if __name__ == "__main__":
    main()
