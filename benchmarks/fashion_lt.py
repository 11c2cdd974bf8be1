"""Fashion-MNIST-LT (docs/benchmarks.md): does augment's output beat the classical fixes and the noise control
where classes overlap (Shirt, T-shirt, Pullover, Coat)?

Per seed: Fashion-MNIST's train split (Debian's dataset-fashion-mnist, MIT) subsampled to an exponential
ratio-100 profile, 4000 images of class 0 down to 40 of class 9 (seeded, without replacement), written as a
PNG folder and run through the CLI as a user would (`augment run --data FOLDER --out OUT --set ...`); test:
the full test split (1,000 a class). Arms, each with the same downstream classifier and seeds: the classical
ones (imbalanced, random oversampling, class-weighted, SMOTE, logit adjustment, deferred re-weighting),
mixup-DRW (context, not a gate), the mixing sources of augment.mixing and the pure-noise control (each as
augment's output is used, and in the deferred phase of deferred re-weighting), and augment's output as
the README says to use it, in the deferred phase of deferred re-weighting only, and that with its head
re-fitted on real images (cRT), beside a noise control with the output's per-class counts and weights.
Prints mean ± std, per-class recall and paired bootstrap 95% intervals.

    python benchmarks/fashion_lt.py [--seeds 5] [--first-seed 0] [--no-gan] [--mix remix,cutmix,noise]
        [--mix-ratio R] [--classifiers cnn] [--cnn-steps 2000] [--set key=value ...] [--keep DIR] [--save rows.csv]
    python benchmarks/fashion_lt.py --from-csv rows_a.csv rows_b.csv

With --dataset colours the same protocol runs on the procedural colour benchmark (augment.data.colour_objects,
--size px RGB, five colour families): a long-tailed train split of 1000 down to 20 images a class (ratio 50,
drawn afresh per seed) and a balanced test split of 500 a class (its own seed stream).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from mnist_lt import evaluate_seed, print_paired, read_output, report, report_saved
from PIL import Image
from shared_data import FASHION_CLASSES, fashion_mnist

from augment.data import colour_objects
from augment.data.longtail import exponential_counts, subsample_per_class
from augment.downstream import (
    build_arms,
    chosen_arms,
    matched_noise_arms,
    mixed_source_arms,
    mixup_drw,
    output_arms,
    tail_classes,
)
from augment.precision import resolve_precision
from augment.provenance import package_versions

COUNTS = exponential_counts(4000, 10, 100)  # 4000, 2397, 1437, 861, 516, 309, 185, 111, 66, 40
NAMES = [f"{i}-{n}" for i, n in enumerate(FASHION_CLASSES)]  # folder names that sort in class order
GAN = ["train.threads=0", "score.cas=false", "score.detector=false"]
COLOUR_COUNTS = exponential_counts(1000, len(colour_objects.CLASSES), 50)  # 1000, 376, 141, 53, 20
COLOUR_NAMES = [f"{i}-{n}" for i, n in enumerate(colour_objects.CLASSES)]


def write_folder(root: Path, x: np.ndarray, y: np.ndarray, rows: np.ndarray, names: list[str] = NAMES) -> Path:
    """The long-tailed split as a user's PNG folder: root/<class>/fmnist-<row>.png (RGB when x has 3 channels)."""
    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)
    for r in rows:
        image = x[r] if x[r].ndim == 2 else x[r].transpose(1, 2, 0)
        Image.fromarray(np.ascontiguousarray(image)).save(root / names[y[r]] / f"fmnist-{r:05d}.png")
    return root


def long_tailed(dataset: str, seed: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, labels, the long-tailed rows) of one seed; images (N, H, W) or (N, 3, H, W) uint8."""
    if dataset == "colours":
        x, y = colour_objects.make_split(COLOUR_COUNTS, size, seed)
        return x, y, np.arange(len(y))
    x_tr, y_tr = fashion_mnist("train")
    return x_tr, y_tr, subsample_per_class(y_tr, COUNTS, seed)


def test_split(dataset: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    if dataset == "colours":
        return colour_objects.make_split([500] * len(colour_objects.CLASSES), size, seed=10_000)
    x_test, y_test = fashion_mnist("t10k")
    return x_test[:, None], y_test


def run_cli(folder: Path, out: Path, seed: int, sets: list[str]) -> float:
    """`augment run` on the folder, as a user runs it; returns its wall seconds."""
    cmd = [sys.executable, "-m", "augment.cli", "run", "--data", str(folder), "--out", str(out),
           "--set", f"seed={seed}"]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "TQDM_DISABLE": "1"})
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--no-gan", action="store_true", help="no augment run: the classical, mixing and noise arms only")
    p.add_argument("--mix", default="remix,cutmix,noise", help="mixing sources to add as arms ('' for none)")
    p.add_argument("--mix-ratio", type=float, default=None, help="cap mixed images at R x a class's real count")
    p.add_argument("--mixup-alpha", type=float, default=1.0, help="mixup-DRW's alpha (0: leave the arm out)")
    p.add_argument("--classifiers", default="cnn")
    p.add_argument("--cnn-steps", type=int, default=2000)
    p.add_argument("--cnn-width", type=int, default=16)
    p.add_argument("--set", dest="sets", action="append", default=[])
    p.add_argument("--arms", default="", help="only these arms (';'-separated)")
    p.add_argument("--keep", type=Path, help="keep each seed's folder and output under this folder")
    p.add_argument("--save", type=Path, help="write every seed's rows (and predictions) here")
    p.add_argument("--from-csv", type=Path, nargs="+")
    p.add_argument("--dataset", choices=("fashion", "colours"), default="fashion")
    p.add_argument("--size", type=int, default=32, help="--dataset colours: image side in pixels")
    args = p.parse_args()
    title = "Fashion-MNIST-LT" if args.dataset == "fashion" else f"Colour-objects-LT ({args.size} px RGB)"
    counts, names = (COUNTS, NAMES) if args.dataset == "fashion" else (COLOUR_COUNTS, COLOUR_NAMES)
    classifiers = tuple(c.strip() for c in args.classifiers.split(","))
    if args.from_csv:
        report_saved(args.from_csv, title, classifiers)
        return
    x_test, y_test = test_split(args.dataset, args.size)
    k = len(names)
    v = package_versions()
    sets = [*GAN, *args.sets]
    print(f"# {title}: {args.seeds} seed(s) from {args.first_seed}; counts {counts}; device "
          f"{'cuda' if torch.cuda.is_available() else 'cpu'} ({platform.machine()}, {platform.processor() or '?'}, "
          f"{torch.get_num_threads()} threads); torch {v['torch']}; augment settings "
          f"{'none (--no-gan)' if args.no_gan else sets}; downstream SmallCNN(width {args.cnn_width}), "
          f"{args.cnn_steps} steps of batch 128, shifts, precision {resolve_precision(torch.device('cpu'), 'auto')}; "
          f"mixing {args.mix!r} ratio {args.mix_ratio}", flush=True)
    root = args.keep or Path(tempfile.mkdtemp(prefix="fashion_lt_"))
    runs, predictions = [], {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        x_tr, y_tr, lt = long_tailed(args.dataset, seed, args.size)
        x, y = x_tr[lt], y_tr[lt]
        x = x if x.ndim == 4 else x[:, None]
        arms = build_arms(x, y, seed)
        if args.mixup_alpha > 0:
            arms["mixup-DRW"] = mixup_drw(x, y, args.mixup_alpha)
        kinds = tuple(k.strip() for k in args.mix.split(",") if k.strip())
        arms.update(mixed_source_arms(x, y, seed, kinds, args.mix_ratio))
        note = ""
        if not args.no_gan:
            out = root / f"seed{seed}" / "out"
            folder = write_folder(root / f"seed{seed}" / "data", x_tr, y_tr, lt, names)
            seconds = run_cli(folder, out, seed, sets)
            got = read_output(out)
            real, kept = got["real"], got["kept"]
            weights = np.concatenate([real[2], kept[2]])
            arms.update(output_arms(real[0], real[1], kept[0], kept[1], weights))
            arms.update(matched_noise_arms(real[0], real[1], kept[1], weights, seed))
            meta = json.loads((out / "dataset.json").read_text())
            share = meta.get("synthetic_share") or {}
            note = (f"augment run {seconds:.0f} s, share {share.get('share')}, kept {len(kept[1])}, "
                    f"rejected by {meta.get('rejected_by')}, stage seconds {meta.get('stage_seconds')}; ")
        if args.arms:
            try:
                arms = chosen_arms(arms, args.arms)
            except ValueError as exc:
                sys.exit(str(exc))
        evaluate_seed(arms, x_test, y_test, k, tail_classes(y, k), classifiers, seed, runs, predictions, args.save,
                      note, cnn_steps=args.cnn_steps, cnn_width=args.cnn_width)
    all_runs = pd.concat(runs, ignore_index=True)
    report(all_runs, classifiers)
    print_paired(all_runs, predictions, y_test)


if __name__ == "__main__":
    main()
