"""digits-LT (docs/benchmarks.md): does a logistic regression trained on augment's output beat the classical fixes?

For each seed: stratified 60/40 split of scikit-learn's digits, exponential imbalance (ratio 20) on
the train split, `augment` run end to end on it (the demo's settings unless overridden), then
logistic regression on pixels trained on: the imbalanced split; random oversampling; class weights;
the exported dataset read back from disk (real + kept synthetic, `images/` as an ImageFolder).
Scored on the untouched test split. Prints mean ± std over the seeds.

    python benchmarks/digits_lt.py [--seeds 5] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import platform
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
from augment.downstream import logreg_arms
from augment.pipeline import run_pipeline
from augment.provenance import package_versions
from augment.score.probe import pixels


def one_seed(seed: int, sets: list[str], workdir: Path) -> tuple[pd.DataFrame, float]:
    cfg = build_config(sets=[f"seed={seed}", *sets], base=DEMO_CONFIG)
    train, test = digits_lt(seed, cfg.image)
    out = workdir / f"seed{seed}"
    t0 = time.perf_counter()
    run_pipeline(train, cfg, out)
    seconds = time.perf_counter() - t0
    manifest = pd.read_parquet(out / "manifest.parquet")
    kept_syn = manifest[manifest.is_synthetic & manifest.kept]
    # the synthetic images exactly as exported: read back from the PNG files
    x_syn = np.stack([np.asarray(Image.open(out / p)) for p in kept_syn.path]).reshape(len(kept_syn), -1)
    df = logreg_arms(pixels(train.images), train.labels.numpy(), x_syn.astype(np.float32) / 255.0,
                     kept_syn.label.to_numpy(), pixels(test.images), test.labels.numpy(), train.num_classes, seed)
    df["seed"] = seed
    return df, seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--set", dest="sets", action="append", default=[])
    args = p.parse_args()
    cfg = build_config(sets=args.sets, base=DEMO_CONFIG)
    versions = package_versions()
    print(f"# digits-LT benchmark: {args.seeds} seeds; device {'cuda' if torch.cuda.is_available() else 'cpu'} "
          f"({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads); "
          f"torch {versions['torch']}, scikit-learn {versions['scikit-learn']}")
    print(f"# GAN: {cfg.model.variant}, width {cfg.model.width}, latent {cfg.model.latent_dim}, "
          f"{cfg.train.steps} steps, batch {cfg.train.batch_size}, lr {cfg.train.lr}, "
          f"diffaugment '{cfg.train.diffaugment}', strategy {cfg.balance.sampling_strategy}, "
          f"min_aux_prob {cfg.select.min_aux_prob}; downstream: LogisticRegression(C=1, max_iter=300) on pixels")
    frames, times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            df, seconds = one_seed(seed, args.sets, Path(tmp))
            frames.append(df)
            times.append(seconds)
            row = df.set_index("arm")["balanced_accuracy"]
            print(f"seed {seed}: pipeline {seconds:.0f} s; balanced accuracy " +
                  ", ".join(f"{k} {v:.4f}" for k, v in row.items()), flush=True)
    all_runs = pd.concat(frames)
    summary = all_runs.groupby("arm", sort=False)[["balanced_accuracy", "macro_f1", "tail_recall"]].agg(["mean", "std"])
    print("\narm                              balanced acc       macro-F1           tail recall (7-9)")
    for arm, r in summary.iterrows():
        print(f"{arm:32s} " + "   ".join(f"{r[(m, 'mean')]:.4f} ± {r[(m, 'std')]:.4f}"
                                           for m in ("balanced_accuracy", "macro_f1", "tail_recall")))
    print(f"\npipeline wall time per seed: {np.mean(times):.0f} ± {np.std(times):.0f} s")


if __name__ == "__main__":
    main()
