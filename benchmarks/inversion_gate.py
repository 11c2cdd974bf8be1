"""Before transferring head-class variation to the tail through the generator (#40's second source): does an
encoder that inverts the default GAN give codes free of the class? And are head images re-drawn as a tail
class, G(E(x_head), y_tail), read as the tail class or as their head class?

Per seed: the default GAN (augment.train, the product's defaults) on the long-tailed training split; then
for each encoder recipe (augment.inversion, a SmallCNN): "latent" regresses z from G's own images; "pixel"
adds the pixel error of re-drawing them, G(E(x), y) against x; "in-domain" also re-draws real training
images. For each:
  - fit: mean squared error of E(G(z, y)) against z, as a share of var(z) = 1; pixel error of re-drawn
    samples and of re-drawn real images (own class), as a share of the pixel variance; the judge's reading
    of re-drawn real images as their own class; the mean code norm / sqrt(latent_dim) of real images and
    of samples (N(0, I) gives about 1);
  - class in the code: balanced accuracy of a logistic regression reading the class from E(x) of real training
    images (a stratified half to fit, the other to test), beside the same on the raw pixels, and chance;
  - transfer: every head image (the classes above the median count) re-drawn as each tail class (the three
    smallest); a judge SmallCNN (width 16, 1,000 steps, class-balanced batches, fit on the real training
    split) reads them: the share read as the tail class asked for, as the head class they came from, and, for
    reference, the share of the generator's own tail samples (random z) read as their class.

    python benchmarks/inversion_gate.py [--dataset digits|fashion] [--seeds 1] [--encoder-steps 1000]
        [--recipes latent,pixel,in-domain] [--set model.conditioning=concat ...]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from augment.config import build_config
from augment.data import LabeledImages
from augment.data.readers import digits_lt
from augment.generate import generate, load_gan
from augment.inversion import class_leakage, codes, redraw_error, restyle, train_encoder
from augment.provenance import package_versions
from augment.score import cnn
from augment.score.probe import pixels
from augment.train import train


def training_split(dataset: str, seed: int) -> LabeledImages:
    if dataset == "digits":
        return digits_lt(seed)[0]
    from fashion_lt import COUNTS, long_tailed
    from shared_data import FASHION_CLASSES

    x, y, rows = long_tailed("fashion", seed, 28)
    return LabeledImages(torch.from_numpy(x[rows][:, None].copy()), torch.from_numpy(y[rows]),
                         list(FASHION_CLASSES), [f"fmnist-{r}" for r in rows], f"fashion-lt-{seed}-{sum(COUNTS)}")


def halves(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    return train_test_split(idx, test_size=0.5, stratify=labels, random_state=seed)


RECIPES = {"latent": {"pixel_weight": 0.0}, "pixel": {"pixel_weight": 1.0}, "in-domain": {"pixel_weight": 1.0}}


def one_recipe(name: str, gan, data: LabeledImages, judge, seed: int, encoder_steps: int) -> dict:
    labels = data.labels.numpy()
    counts = np.bincount(labels, minlength=data.num_classes)
    real = (data.images, data.labels) if name == "in-domain" else None
    t0 = time.perf_counter()
    inv = train_encoder(gan, data.num_classes, steps=encoder_steps, seed=seed, real=real, **RECIPES[name])
    enc_s = time.perf_counter() - t0
    fit, test = halves(labels, seed)
    c = codes(inv, data.images)
    own = generate(gan, {k: 200 for k in range(data.num_classes)}, seed=seed)
    c_fake = codes(inv, own.images)
    norm = float(np.linalg.norm(c, axis=1).mean() / np.sqrt(inv.latent_dim))
    norm_fake = float(np.linalg.norm(c_fake, axis=1).mean() / np.sqrt(inv.latent_dim))
    self_drawn = restyle(gan, inv, data.images, data.labels)
    self_read = float((cnn.predict(judge, self_drawn)[0].argmax(1) == labels).mean())
    order = np.argsort(counts)
    tail, head = order[:3], np.flatnonzero(counts > np.median(counts))
    heads = torch.from_numpy(np.flatnonzero(np.isin(labels, head)))
    as_tail = as_source = 0.0
    for t in tail:
        drawn = restyle(gan, inv, data.images[heads], int(t))
        pred = cnn.predict(judge, drawn)[0].argmax(1)
        as_tail += float((pred == t).mean()) / len(tail)
        as_source += float((pred == labels[heads.numpy()]).mean()) / len(tail)
    return {"recipe": name, "encoder_s": enc_s, "fit_error": inv.fit_error, "pixel_error_samples": inv.pixel_error,
            "pixel_error_real": redraw_error(gan, inv, data.images, data.labels),
            "redrawn_real_read_as_own": self_read, "code_norm_real": norm, "code_norm_samples": norm_fake,
            "class_in_code": class_leakage(c[fit], labels[fit], c[test], labels[test]),
            "restyled_read_as_tail": as_tail, "restyled_read_as_head_source": as_source}


def one_seed(dataset: str, seed: int, encoder_steps: int, workdir: str, recipes: list[str],
             sets: list[str]) -> list[dict]:
    data = training_split(dataset, seed)
    labels = data.labels.numpy()
    counts = np.bincount(labels, minlength=data.num_classes)
    t0 = time.perf_counter()
    result = train(data, build_config(sets=[f"seed={seed}", *sets]), f"{workdir}/gan-{seed}")
    gan_s = time.perf_counter() - t0
    gan = load_gan(result.best_checkpoint)
    fit, test = halves(labels, seed)
    px = pixels(data.images)
    judge = cnn.train_cnn(data.images, data.labels, data.num_classes, steps=1000, seed=seed, width=16)
    tail = np.argsort(counts)[:3]
    own = generate(gan, {int(t): 500 for t in tail}, seed=seed)
    common = {"seed": seed, "gan_steps": result.step, "gan_s": gan_s, "chance": 1 / data.num_classes,
              "class_in_pixels": class_leakage(px[fit], labels[fit], px[test], labels[test]),
              "own_tail_samples_read_as_class": float(
                  (cnn.predict(judge, own.images)[0].argmax(1) == own.labels.numpy()).mean()),
              "head_images": int((counts > np.median(counts))[labels].sum())}
    return [{**common, **one_recipe(name, gan, data, judge, seed, encoder_steps)} for name in recipes]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=("digits", "fashion"), default="digits")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--encoder-steps", type=int, default=1000)
    p.add_argument("--set", dest="sets", action="append", default=[], help="GAN settings, key=value")
    p.add_argument("--recipes", default="latent,pixel,in-domain", help=f"encoder recipes, of {list(RECIPES)}")
    args = p.parse_args()
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    if unknown := [r for r in recipes if r not in RECIPES]:
        p.error(f"--recipes: unknown {unknown}; choose from {list(RECIPES)}")
    import tempfile

    versions = package_versions()
    print(f"# inversion gate: {args.dataset}-LT, GAN {args.sets or 'defaults'}, encoder SmallCNN width 32, "
          f"{args.encoder_steps} steps "
          f"of batch 128; judge SmallCNN width 16, 1000 steps; device cpu ({platform.machine()}, "
          f"{torch.get_num_threads()} threads); torch {versions.get('torch')}, augment {versions.get('augment')}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for r in one_seed(args.dataset, seed, args.encoder_steps, tmp, recipes, args.sets):
                rows.append(r)
                print(" | ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()),
                      flush=True)
    keys = [k for k, v in rows[0].items() if isinstance(v, float)]
    for name in recipes:
        mine = [r for r in rows if r["recipe"] == name]
        print(f"mean of {len(mine)} seed(s), {name} | "
              + " | ".join(f"{k} {np.mean([r[k] for r in mine]):.3f}" for k in keys))


if __name__ == "__main__":
    main()
