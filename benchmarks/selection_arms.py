"""Which synthetic images to keep: the selection levers on MNIST-LT outputs kept by benchmarks/mnist_lt.py --keep.

Per seed, from the output folder --runs/seed<s> (its manifest and its images/ and rejected/ files):
the candidates that passed every check of the run's selection (kept, or left out only by the quota or
the amount: reject_reason '', 'surplus' or 'share') form the pool. The external classifier's recipe is
fitted again on the seed's real images (augment.score.external.fit_external, the pipeline's own
recipe and seed), and each arm keeps, per class, up to the run's plan (4,000 minus the real count):

  as selected         the pool in latent order (what the run kept before the amount)
  manifold gate       the pool inside the class's real k-NN radius (select.manifold_k = --k), latent order
  informative         the pool in select.rank = 'informative' order (hard half first, farthest-point)
  gate + informative  both

Each arm trains the downstream classifier on real + kept synthetic images with class-balancing weights
(as augment's manifest weights them), beside random oversampling and logit adjustment on the same seed;
prints per-arm figures, per-class gate pass counts and paired bootstrap 95% intervals.

    python benchmarks/selection_arms.py --runs DIR [--seeds 5] [--k 3] [--classifiers cnn] [--cnn-steps 1000]
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from mnist_lt import print_paired, report, split
from PIL import Image

from augment.config import SelectConfig
from augment.downstream import build_arms, evaluate_arms, tail_classes, weighted_output
from augment.score.external import fit_external
from augment.score.manifold import inside_class_manifold
from augment.select import select

PASSED = ("", "surplus", "share")


def pool(out: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images, labels and latent indices of the candidates that passed every check of the run."""
    m = pd.read_parquet(out / "manifest.parquet")
    rows = m[m["is_synthetic"] & m["reject_reason"].isin(PASSED)]
    images = np.stack([np.asarray(Image.open(out / p)) for p in rows["path"]])[:, None]
    return images, rows["label"].to_numpy(np.int64), rows["latent_index"].to_numpy(np.int64)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, required=True)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--classifiers", default="cnn")
    p.add_argument("--cnn-steps", type=int, default=1000)
    p.add_argument("--cnn-width", type=int, default=16)
    args = p.parse_args()
    classifiers = tuple(c.strip() for c in args.classifiers.split(","))
    print(f"# selection levers on MNIST-LT outputs under {args.runs}; CPU ({platform.machine()}, "
          f"{torch.get_num_threads()} threads), torch {torch.__version__}; manifold k {args.k}; downstream SmallCNN"
          f"(width {args.cnn_width}) {args.cnn_steps} steps, shift augmentation; seeds 0..{args.seeds - 1}", flush=True)
    runs, predictions = [], {}
    for seed in range(args.seeds):
        train, _, (x_test, y_test) = split(seed)
        x, y = train.images.numpy(), train.labels.numpy()
        xs, ys, latent = pool(args.runs / f"seed{seed}")
        ext, rep = fit_external(train, "cnn", seed=seed)
        probs, feats = ext.predict(torch.from_numpy(xs))
        _, real_feats = ext.predict(train.images)
        counts = np.bincount(y, minlength=10)
        need = {c: int(counts.max() - counts[c]) for c in range(10) if counts[c] < counts.max()}
        inside = inside_class_manifold(feats, ys, real_feats, y, args.k)
        common = {"aux_prob": np.ones(len(ys)), "ext_prob": probs[np.arange(len(ys)), ys], "features": feats,
                  "latent_index": latent}
        chosen = {}
        for name, rank, gate in (("as selected", "random", None), ("manifold gate", "random", inside),
                                 ("informative", "informative", None), ("gate + informative", "informative", inside)):
            cfg = SelectConfig(min_aux_prob=0, min_ext_prob=0, require_agreement=False, reject_copies=False,
                               reject_duplicates=False, rank=rank)
            sel = select(ys, need, cfg, on_manifold=gate, **common)
            chosen[name] = sel.kept
        arms = build_arms(x, y, seed)
        arms = {a: arms[a] for a in ("random oversampling", "logit-adjusted")}
        for name, kept in chosen.items():
            arms[name] = weighted_output(x, y, xs[kept], ys[kept])
        df = evaluate_arms(arms, x_test, y_test, 10, tail_classes(y, 10), classifiers, seed, predictions=predictions,
                           cnn_steps=args.cnn_steps, cnn_width=args.cnn_width)
        runs.append(df if "seed" in df.columns else df.assign(seed=seed))
        print(f"seed {seed}: pool {len(ys)}; external held-out balanced accuracy {rep.holdout_balanced_accuracy:.3f}; "
              "inside the manifold per class " + " ".join(f"{c}:{inside[ys == c].sum()}/{(ys == c).sum()}"
                                                          for c in range(10) if (ys == c).any())
              + "; kept " + ", ".join(f"{k} {v.sum()}" for k, v in chosen.items()) + "; balanced accuracy "
              + ", ".join(f"{r['arm']} {r['balanced_accuracy']:.4f}" for _, r in df.iterrows()), flush=True)
    all_runs = pd.concat(runs, ignore_index=True)
    report(all_runs, classifiers)
    print_paired(all_runs, predictions, y_test)


if __name__ == "__main__":
    main()
