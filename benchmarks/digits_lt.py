"""digits-LT (docs/benchmarks.md): does a classifier trained on augment's output beat the classical fixes?

For each seed: stratified 60/40 split of scikit-learn's digits, exponential imbalance (ratio 20) on
the train split, `augment` run end to end on it (the demo's settings unless overridden), then
logistic regression on pixels and the SmallCNN recipe trained on: the imbalanced split; random
oversampling; class weights; SMOTE; post-hoc logit adjustment; deferred re-weighting (CNN); and
augment's output read back from disk as a user receives it (real and kept synthetic images with the
manifest's weights: logistic regression's sample weights, the CNN's weighted batch draw). Scored on the
untouched test split. Prints mean ± std over the seeds and, for every arm and classifier, the paired
bootstrap 95% interval of (arm - random oversampling) and (arm - the best classical arm), resampling
seeds and test images within each class (the arms share seeds).

    python benchmarks/digits_lt.py [--seeds 5] [--classifiers logreg,cnn] [--cnn-steps 1000] [--set key=value ...]
        [--arms "random oversampling;deferred re-weighting + synthetic"]
        [--save rows.csv]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from augment.cli import DEMO_CONFIG
from augment.config import build_config
from augment.data import digits_lt
from augment.downstream import (
    ARM_ORDER,
    CLASSICAL,
    build_arms,
    evaluate_arms,
    matched_noise_arms,
    output_arms,
    tail_classes,
)
from augment.paired import paired_bootstrap_sets
from augment.pipeline import run_pipeline
from augment.provenance import package_versions


def one_seed(seed: int, sets: list[str], workdir: Path, predictions: dict, classifiers: tuple[str, ...],
             cnn_steps: int, wanted: list[str] | None = None) -> tuple[pd.DataFrame, float, dict]:
    cfg = build_config(sets=[f"seed={seed}", *sets], base=DEMO_CONFIG)
    train, test = digits_lt(seed, cfg.image)
    out = workdir / f"seed{seed}"
    t0 = time.perf_counter()
    summary = run_pipeline(train, cfg, out)
    seconds = time.perf_counter() - t0
    m = pd.read_parquet(out / "manifest.parquet")
    real, syn = m[~m.is_synthetic], m[m.is_synthetic & m.kept]
    # the output exactly as exported: images read back from the PNG files, with the manifest's weights
    x, xs = (np.stack([np.asarray(Image.open(out / p)) for p in rows.path])[:, None] if len(rows) else
             np.zeros((0, 1, train.size, train.size), np.uint8) for rows in (real, syn))
    y, ys = real.label.to_numpy(), syn.label.to_numpy()
    arms = build_arms(x, y, seed, x_aug=xs, y_aug=ys)  # with synthetic images: the stacked arms too
    weights = np.concatenate([real.weight, syn.weight])  # the manifest's: synthetic_weight included
    arms.update(output_arms(x, y, xs, ys, weights))
    arms.update(matched_noise_arms(x, y, ys, weights, seed))
    if wanted:  # a stacked arm is absent where the output took no synthetic image
        arms = {a: arms[a] for a in wanted if a in arms}
    df = evaluate_arms(arms, test.images.numpy(), test.labels.numpy(), train.num_classes,
                       tail_classes(y, train.num_classes), classifiers, seed, predictions=predictions,
                       cnn_steps=cnn_steps, cnn_width=16)
    predictions[("y_test", seed)] = test.labels.numpy()
    return df, seconds, summary.get("synthetic_share") or {}


def paired(predictions: dict, classifier: str, arm: str, ref: str, seeds: list[int]):
    return paired_bootstrap_sets([(predictions[(classifier, arm, s)] == predictions[("y_test", s)],
                                   predictions[(classifier, ref, s)] == predictions[("y_test", s)],
                                   predictions[("y_test", s)]) for s in seeds])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--set", dest="sets", action="append", default=[])
    p.add_argument("--save", help="write every (classifier, arm, seed) row to this CSV")
    p.add_argument("--classifiers", default="logreg,cnn")
    p.add_argument("--cnn-steps", type=int, default=1000)
    p.add_argument("--arms", default="", help="';'-separated arms to run (default: all); a stacked arm such as "
                   "'deferred re-weighting + synthetic' needs an output with synthetic images")
    args = p.parse_args()
    wanted = [a.strip() for a in args.arms.split(";") if a.strip()]
    unknown = sorted(set(wanted) - set(ARM_ORDER))
    if unknown:  # before any training
        sys.exit(f"--arms: unknown arm(s) {unknown}; the arms are {list(ARM_ORDER)}")
    cfg = build_config(sets=args.sets, base=DEMO_CONFIG)
    versions = package_versions()
    print(f"# digits-LT benchmark: {args.seeds} seeds; device {'cuda' if torch.cuda.is_available() else 'cpu'} "
          f"({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads); "
          f"torch {versions['torch']}, scikit-learn {versions['scikit-learn']}")
    print(f"# GAN: {cfg.model.variant}, width {cfg.model.width}, latent {cfg.model.latent_dim}, "
          f"{cfg.train.steps} steps, batch {cfg.train.batch_size}, lr {cfg.train.lr}, "
          f"diffaugment '{cfg.train.diffaugment}', strategy {cfg.balance.sampling_strategy}, "
          f"min_aux_prob {cfg.select.min_aux_prob}; downstream: LogisticRegression(C=1, max_iter=300) on pixels, "
          f"SmallCNN width 16, {args.cnn_steps} steps of batch 128")
    classifiers = tuple(c.strip() for c in args.classifiers.split(","))
    frames, times, predictions = [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            df, seconds, share = one_seed(seed, args.sets, Path(tmp), predictions, classifiers, args.cnn_steps,
                                          wanted)
            frames.append(df)
            times.append(seconds)
            print(f"seed {seed}: pipeline {seconds:.0f} s; synthetic share {share.get('share')}; balanced accuracy "
                  + ", ".join(f"{r.classifier}:{r.arm} {r.balanced_accuracy:.4f}" for r in df.itertuples()), flush=True)
    all_runs = pd.concat(frames)
    if args.save:
        all_runs.to_csv(args.save, index=False)
    seeds = list(range(args.seeds))
    for classifier in classifiers:
        rows = all_runs[all_runs["classifier"] == classifier]
        summary = rows.groupby("arm", sort=False)[["balanced_accuracy", "macro_f1", "tail_recall"]].agg(["mean", "std"])
        best = max((a for a in CLASSICAL if a in summary.index),
                   key=lambda a: summary.loc[a, ("balanced_accuracy", "mean")])
        print(f"\n{classifier}: arm              balanced acc      macro-F1          tail recall       "
              f"minus random oversampling [95%]   minus best classical ({best}) [95%]")
        for arm, r in summary.iterrows():
            cells = "  ".join(f"{r[(m, 'mean')]:.4f} ± {r[(m, 'std')]:.4f}"
                              for m in ("balanced_accuracy", "macro_f1", "tail_recall"))
            vs = [str(paired(predictions, classifier, arm, ref, seeds)) if ref != arm else "-"
                  for ref in ("random oversampling", best)]
            print(f"{arm:24s} {cells}  {vs[0]:34s} {vs[1]}")
    print(f"\npipeline wall time per seed: {np.mean(times):.0f} ± {np.std(times):.0f} s")


if __name__ == "__main__":
    main()
