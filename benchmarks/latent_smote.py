"""MNIST-LT with the latent-SMOTE peer (after DeepSMOTE): does interpolating in an autoencoder's latent space
beat the classical fixes with the same downstream classifier?

Per seed: the MNIST-LT draw of benchmarks/mnist_lt.py (seed s), an autoencoder trained on it
(augment.latent_smote, class-balanced batches), and every class filled up to the head class's count
(4,000) with decoded SMOTE interpolations between its real images' latent codes. The arms are those of
mnist_lt.py (augment.downstream.build_arms) with these images as the synthetic ones: the "augmented"
arm is real + latent-SMOTE images, weighted as augment's manifest weights them (synthetic weight 1).
Prints the arms' figures and every arm's paired bootstrap 95% interval against random oversampling and
the best classical arm; --save keeps the rows and predictions for mnist_lt.py --from-csv.

    python benchmarks/latent_smote.py [--seeds 5] [--classifiers cnn] [--ae-steps 2000] [--latent 32]
        [--cnn-steps 1000] [--save rows.csv] [--arms 'random oversampling;augmented']
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import pandas as pd
import torch
from mnist_lt import PER_CLASS, print_paired, report, save_predictions, split

from augment.downstream import build_arms, evaluate_arms, tail_classes
from augment.latent_smote import AutoencoderConfig, generate_latent_smote, train_autoencoder
from augment.precision import resolve_precision
from augment.provenance import package_versions


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--classifiers", default="cnn")
    p.add_argument("--ae-steps", type=int, default=2000)
    p.add_argument("--latent", type=int, default=32)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--cnn-steps", type=int, default=1000)
    p.add_argument("--cnn-width", type=int, default=16)
    p.add_argument("--save", help="write the per-arm rows (and predictions beside them) to this CSV")
    p.add_argument("--arms", default="", help="only these arms, separated by ';'")
    args = p.parse_args()
    classifiers = tuple(c.strip() for c in args.classifiers.split(","))
    ae = AutoencoderConfig(latent_dim=args.latent, width=args.width, steps=args.ae_steps)
    v = package_versions()
    print(f"# MNIST-LT, latent SMOTE: {args.seeds} seed(s) from {args.first_seed}; CPU ({platform.machine()}, "
          f"{torch.get_num_threads()} threads, {resolve_precision(torch.device('cpu'), 'auto')}); torch {v['torch']}; "
          f"autoencoder {ae}; downstream: SmallCNN(width {args.cnn_width}), {args.cnn_steps} steps of batch 128, "
          "shift augmentation; every class filled to 4,000", flush=True)
    runs, predictions = [], {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        train, (x_full, y_full), (x_test, y_test) = split(seed, PER_CLASS)
        t = time.perf_counter()
        model = train_autoencoder(train.images, train.labels, ae, seed=seed)
        t_ae = time.perf_counter() - t
        counts = np.bincount(train.labels.numpy(), minlength=10)
        need = {c: int(counts.max() - counts[c]) for c in range(10)}
        t = time.perf_counter()
        xs, ys = generate_latent_smote(model, train.images, train.labels, need, seed=seed)
        t_gen = time.perf_counter() - t
        x, y = train.images.numpy(), train.labels.numpy()
        arms = build_arms(x, y, seed, x_aug=xs.numpy(), y_aug=ys.numpy(), x_full=x_full, y_full=y_full)
        if args.arms:
            arms = {a: arms[a] for a in (s.strip() for s in args.arms.split(";"))}
        df = evaluate_arms(arms, x_test, y_test, 10, tail_classes(y, 10), classifiers, seed, predictions=predictions,
                           cnn_steps=args.cnn_steps, cnn_width=args.cnn_width)
        runs.append(df if "seed" in df.columns else df.assign(seed=seed))
        if args.save:
            pd.concat(runs, ignore_index=True).to_csv(args.save, index=False)
            save_predictions(predictions, y_test, args.save)
        print(f"seed {seed}: autoencoder {t_ae:.0f} s, {len(ys)} images in {t_gen:.1f} s; balanced accuracy "
              + ", ".join(f"{r['classifier']}:{r['arm']} {r['balanced_accuracy']:.4f}" for _, r in df.iterrows()),
              flush=True)
    all_runs = pd.concat(runs, ignore_index=True)
    report(all_runs, classifiers)
    print_paired(all_runs, predictions, y_test)


if __name__ == "__main__":
    main()
