"""Ways to add one checkpoint's images to MNIST-LT, and whether a CNN can tell them from real ones.

Generates 8,000 images per class from --checkpoint (trained on MNIST-LT draw --seed, e.g. by
benchmarks/checkpoint_value.py --work DIR), keeps those the external SmallCNN (500 steps, trained on
the draw) reads as their class with p >= --min-ext-prob, and trains the downstream classifiers on:
random oversampling; the augmented arm (real + generated up to 4000 per class, as mnist_lt.py); random
oversampling + k generated images in every class (so being generated says nothing about the class);
real + 4000 generated in every class; 4000 real images of every class (the upper bound). Also trains
a SmallCNN to tell real from generated images (4,000 of each, half held out) and prints its held-out
accuracy (0.5 = indistinguishable).
Downstream CNN figures vary with the CNN's seed, so --cnn-seeds repeats them; --every-class ''
leaves out the oversampling + k arms.
--rank-by takes, within each class, the kept images that look most real first: by the GAN
discriminator's realism, or by a separate real-vs-generated SmallCNN trained on another draw of
generated images (discriminator rejection sampling, after the fact); --pool sets how many
candidates per class to rank.

    python benchmarks/synthetic_arms.py --checkpoint CKPT [--seed 0] [--min-ext-prob 0.5] [--cnn-seeds 3]
        [--every-class 1000,4000]
                                        [--rank-by none|realism|detector] [--pool 8000]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from mnist_lt import PER_CLASS, split

from augment.downstream import Arm, evaluate_arms, random_oversample, tail_classes
from augment.generate import generate, load_gan
from augment.provenance import package_versions
from augment.score import cnn
from augment.score.detector import detector_accuracy
from augment.score.external import fit_external
from augment.score.gan_scores import gan_scores


def with_generated(x: np.ndarray, y: np.ndarray, syn: dict[int, np.ndarray], n: dict[int, int]) -> Arm:
    parts = [syn[c][:n[c]] for c in sorted(syn)]
    labels = [np.full(len(s), c) for c, s in zip(sorted(syn), parts)]
    return Arm(np.concatenate([x, *parts]), np.concatenate([y, *labels]))


def read_as_their_class(prob: np.ndarray, labels: np.ndarray, min_prob: float) -> np.ndarray:
    """Candidates the external classifier reads as their intended class with p >= min_prob (the
    product's ext_prob and agreement checks; these benchmarks have no aux scores)."""
    return (prob[np.arange(len(labels)), labels] >= min_prob) & (prob.argmax(1) == labels)


def real_vs_generated(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels for a detector: real is class 0, generated class 1."""
    return np.concatenate([real, fake]), np.concatenate([np.zeros(len(real)), np.ones(len(fake))]).astype(np.int64)


def train_detector(x: np.ndarray, y: np.ndarray, seed: int) -> torch.nn.Module:
    return cnn.train_cnn(torch.from_numpy(x), torch.from_numpy(y), 2, steps=400, seed=seed, width=16, balanced=False)


def looks_real(gan, cand, rank_by: str, real: np.ndarray, seed: int) -> np.ndarray | None:
    """Per candidate, how real it looks ('realism': the GAN's discriminator; 'detector': p(real) from a
    SmallCNN trained on `real` against another draw of generated images); None for 'none'."""
    if rank_by == "realism":
        return gan_scores(gan, cand.images, cand.labels)["realism"]
    if rank_by == "detector":
        other = generate(gan, {c: len(real) // 10 for c in range(10)}, seed=seed + 99).images.numpy()
        return cnn.predict(train_detector(*real_vs_generated(real, other), seed + 5), cand.images)[0][:, 0]
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0, help="the MNIST-LT draw the checkpoint was trained on")
    p.add_argument("--min-ext-prob", type=float, default=0.5)
    p.add_argument("--cnn-seeds", type=int, default=3)
    p.add_argument("--cnn-steps", type=int, default=400)
    p.add_argument("--every-class", default="1000,4000")
    p.add_argument("--rank-by", choices=("none", "realism", "detector"), default="none")
    p.add_argument("--pool", type=int, default=8000, help="candidates generated per class")
    args = p.parse_args()
    seed = args.seed
    train, full, (x_test, y_test) = split(seed)
    x, y = train.images.numpy(), train.labels.numpy()
    counts = np.bincount(y, minlength=10)
    v = package_versions()
    print(f"# generated-image arms on MNIST-LT seed {seed} from {args.checkpoint}; kept: external p >= "
          f"{args.min_ext_prob} and its top class, ranked by {args.rank_by}, of {args.pool} per class; "
          f"device cpu ({platform.machine()}, {torch.get_num_threads()} threads); torch {v['torch']}; "
          f"downstream cnn {args.cnn_steps} steps, width 16", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        ext, _ = fit_external(train, "cnn", seed=seed, steps=500, cache=Path(tmp) / "external.pt")
    gan = load_gan(args.checkpoint)
    cand = generate(gan, {c: args.pool for c in range(10)}, seed=seed)
    prob, lab = ext.predict(cand.images)[0], cand.labels.numpy()
    ok = read_as_their_class(prob, lab, args.min_ext_prob)
    score = looks_real(gan, cand, args.rank_by, x[np.random.default_rng(seed + 5).permutation(len(x))[:4000]], seed)
    order = np.arange(len(lab)) if score is None else np.argsort(-score, kind="stable")
    syn = {c: cand.images.numpy()[order[((lab == c) & ok)[order]]] for c in range(10)}
    print(f"# kept per class {[len(syn[c]) for c in range(10)]}", flush=True)
    fake = np.concatenate([syn[c][:400] for c in range(10)])
    fake_y = np.concatenate([np.full(len(syn[c][:400]), c) for c in range(10)])
    found = detector_accuracy(torch.from_numpy(x), y, torch.from_numpy(fake), fake_y, [str(c) for c in range(10)],
                              seed=seed)
    print(f"# real-vs-generated SmallCNN (augment.score.detector), held-out accuracy {found['all']:.4f}", flush=True)
    arms = {"random oversampling": Arm(*random_oversample(x, y, seed)),
            "augmented": with_generated(x, y, syn, {c: max(PER_CLASS - counts[c], 0) for c in range(10)})}
    for k in (int(s) for s in args.every_class.split(",") if s.strip()):
        ros = arms["random oversampling"]
        arms[f"oversampling + {k} generated in every class"] = with_generated(ros.images, ros.labels, syn,
                                                                             {c: k for c in range(10)})
    arms["real + 4000 generated in every class"] = with_generated(x, y, syn, {c: PER_CLASS for c in range(10)})
    arms["full balanced (upper bound)"] = Arm(*full)
    tail = tail_classes(y, 10)
    runs = [evaluate_arms(arms, x_test, y_test, 10, tail, ("logreg", "cnn") if s == 0 else ("cnn",), seed * 100 + s,
                          cnn_steps=args.cnn_steps, cnn_width=16) for s in range(args.cnn_seeds)]
    table = pd.concat(runs).groupby(["classifier", "arm"], sort=False)[["balanced_accuracy", "tail_recall"]]
    out = table.mean().add_suffix(" mean").join(table.std(ddof=0).add_suffix(" std")).join(table.size().rename("runs"))
    print(out.round(4).to_string())


if __name__ == "__main__":
    main()
