"""Does head-class variation, carried to the tail through the generator, help a classifier (#40's second
source)? Before the source is built into the pipeline: tail images rendered from head images' codes,
G(E(x_head), y_tail), against the generator's own samples of the same classes (random z), a noise control
and random oversampling, on the same seeds and test split.

Per seed: the long-tailed split (inversion_gate.training_split); the GAN with the product's defaults and
`model.conditioning = concat` (with the default 'embed_mul' the codes carry the class: inversion_gate.py);
an encoder (augment.inversion, latent regression); then for every class but the largest, share x its real
count of new images (the quota the pipeline's `balance.synthetic_share` gives), each rendered from the code
of an image of a larger class drawn at random. No scoring or selection: every rendered image is used.
Weights as the manifest's (classes balanced at the largest class, a synthetic row `--synthetic-weight` of
a real one); the downstream SmallCNN as fashion_lt.py's.

    python benchmarks/transfer_lt.py [--dataset fashion|digits] [--seeds 5] [--share 0.5] [--save rows.csv]
    python benchmarks/transfer_lt.py --from-csv rows.csv
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
from inversion_gate import training_split
from mnist_lt import evaluate_seed, print_paired, report, report_saved

from augment.config import build_config
from augment.downstream import (
    Arm,
    balancing_weights,
    matched_noise_arms,
    random_oversample,
    tail_classes,
)
from augment.generate import generate, load_gan
from augment.inversion import restyle, train_encoder
from augment.provenance import package_versions
from augment.train import train


def quotas(counts: np.ndarray, share: float) -> dict[int, int]:
    """share x each class's real count, for every class but the largest."""
    top = counts.max()
    return {c: int(round(share * n)) for c, n in enumerate(counts) if n < top and round(share * n) > 0}


def transferred(gan, inv, images: torch.Tensor, labels: np.ndarray, quota: dict[int, int], seed: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """quota[c] images of class c, each G(E(x), c) for an image x of a larger class drawn at random."""
    counts = np.bincount(labels)
    rng = np.random.default_rng(seed)
    out, out_y = [], []
    for c, n in sorted(quota.items()):
        donors = np.flatnonzero(counts[labels] > counts[c])
        pick = torch.from_numpy(rng.choice(donors, size=n, replace=len(donors) < n))
        out.append(restyle(gan, inv, images[pick], c).numpy())
        out_y.append(np.full(n, c, dtype=np.int64))
    return np.concatenate(out), np.concatenate(out_y)


def one_seed(dataset: str, seed: int, share: float, synthetic_weight: float, sets: list[str], encoder_steps: int,
             workdir: str) -> tuple[dict[str, Arm], np.ndarray, str]:
    data = training_split(dataset, seed)
    x, y = data.images.numpy(), data.labels.numpy()
    t0 = time.perf_counter()
    result = train(data, build_config(sets=[f"seed={seed}", "model.conditioning=concat", *sets]),
                   f"{workdir}/gan-{seed}")
    gan = load_gan(result.best_checkpoint)
    gan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    inv = train_encoder(gan, data.num_classes, steps=encoder_steps, seed=seed, pixel_weight=0.0)
    enc_s = time.perf_counter() - t0
    quota = quotas(np.bincount(y), share)
    made = {"transfer": transferred(gan, inv, data.images, y, quota, seed)}
    own = generate(gan, quota, seed=seed)
    made["GAN samples"] = own.images.numpy(), own.labels.numpy().astype(np.int64)
    arms = {"random oversampling": Arm(*random_oversample(x, y, seed))}
    weights = {}
    for name, (xs, ys) in made.items():
        images, labels = np.concatenate([x, xs]), np.concatenate([y, ys]).astype(np.int64)
        w = weights[name] = balancing_weights(labels, len(y), synthetic_weight)
        arms[f"{name}, weighted"] = Arm(images, labels, weights=w)
        arms[f"deferred re-weighting + {name}"] = Arm(images, labels, weights=w, deferred=True, early_rows=len(y))
    arms.update(matched_noise_arms(x, y, made["transfer"][1], weights["transfer"], seed))
    note = (f"GAN {result.step} steps {gan_s:.0f} s, encoder {enc_s:.0f} s (fit error {inv.fit_error:.3f}, "
            f"pixel error {inv.pixel_error:.3f}), {sum(quota.values())} images per source")
    return arms, y, note


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=("fashion", "digits"), default="fashion")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--share", type=float, default=0.5)
    p.add_argument("--synthetic-weight", type=float, default=0.5)
    p.add_argument("--encoder-steps", type=int, default=1000)
    p.add_argument("--cnn-steps", type=int, default=1000)
    p.add_argument("--cnn-width", type=int, default=16)
    p.add_argument("--set", dest="sets", action="append", default=[], help="GAN settings, key=value")
    p.add_argument("--save", type=Path)
    p.add_argument("--from-csv", type=Path, nargs="+")
    args = p.parse_args()
    if args.from_csv:
        report_saved(args.from_csv, f"transfer through the generator, {args.dataset}-LT", ("cnn",))
        return
    if args.dataset == "fashion":
        from fashion_lt import test_split

        x_test, y_test = test_split("fashion", 28)
    else:
        from augment.data.readers import digits_lt

        test = digits_lt(0)[1]
        x_test, y_test = test.images.numpy(), test.labels.numpy()
        if args.seeds > 1:
            p.error("--dataset digits: its test split changes with the seed; run one seed per invocation")
    v = package_versions()
    print(f"# transfer through the generator, {args.dataset}-LT: {args.seeds} seed(s) from {args.first_seed}; "
          f"share {args.share}, synthetic weight {args.synthetic_weight}; GAN defaults + conditioning concat "
          f"{args.sets}; encoder {args.encoder_steps} steps; downstream SmallCNN width {args.cnn_width}, "
          f"{args.cnn_steps} steps; cpu ({platform.machine()}, {torch.get_num_threads()} threads); "
          f"torch {v['torch']}, augment {v['augment']}", flush=True)
    runs, predictions = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            arms, y, note = one_seed(args.dataset, seed, args.share, args.synthetic_weight, args.sets,
                                     args.encoder_steps, tmp)
            k = int(max(y.max(), y_test.max())) + 1
            evaluate_seed(arms, x_test, y_test, k, tail_classes(y, k), ("cnn",), seed, runs, predictions, args.save,
                          f"{note}; ", cnn_steps=args.cnn_steps, cnn_width=args.cnn_width)
    all_runs = pd.concat(runs, ignore_index=True)
    report(all_runs, ("cnn",))
    print_paired(all_runs, predictions, y_test)


if __name__ == "__main__":
    main()
