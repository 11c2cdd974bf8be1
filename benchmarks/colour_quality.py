"""What the GAN recipes draw in colour: the procedural colour-objects benchmark (augment.data.colour_objects,
64 or 32 px RGB, the class is the object's colour family), each recipe trained for the same wall time.

Recipes: `acgan` (the product's default), `dcgan` (an unconditional DCGAN per class, the anime-faces
write-up's recipe, spectral norm off as 'auto' sets it) and `cgan-wgan-gp` (a conditional GAN with a
WGAN-GP critic taking the label as channels, the hair-colour write-up's recipe). Each trains through the
pipeline's own stages on a balanced split (--per-class images a class) with `train.max_seconds = --budget`
and its best checkpoint draws --n images a class. A judge, the SmallCNN recipe trained on a separate
balanced split at 32 px (generated images are averaged down to 32 px first), reads them:

  judge acc   share of all generated images the judge reads as their class (mean over classes, and the worst)
  spread      per class, mean pairwise distance of generated over real images in the judge's feature
              space (1.0: as varied as real), mean and weakest class
  FD          per class Frechet distance to real test images in the judge's feature space, mean over classes
  detect      held-out accuracy of a fresh real-vs-generated CNN (augment.score.detector; 0.5: cannot tell)

    python benchmarks/colour_quality.py [--size 64] [--budget 900] [--recipes acgan,dcgan,cgan-wgan-gp]
        [--per-class 400] [--n 200] [--seed 0] [--set key=value ...]

Recipes run one after another in this process (never beside another job: the clock is the measure).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from augment.config import build_config
from augment.data import LabeledImages
from augment.data.colour_objects import CLASSES, make_split
from augment.device import prepare_device
from augment.generate import generate
from augment.layout import RunLayout
from augment.provenance import package_versions
from augment.score import cnn
from augment.score.detector import detector_accuracy
from augment.score.metrics import MetricInputs, frechet_distance
from augment.score.probe import mean_pairwise_distance
from augment.stages import stage_load, stage_train
from augment.train import TrainingDiverged
from augment.trained import TrainedModels

RECIPES = {
    "acgan": [],
    "dcgan": ["model.variant=dcgan"],
    "cgan-wgan-gp": ["model.variant=cgan", "model.loss=wgan-gp", "model.d_conditioning=channels"],
}
JUDGE_SIZE = 32


def labeled(x: np.ndarray, y: np.ndarray, name: str) -> LabeledImages:
    return LabeledImages(torch.from_numpy(x), torch.from_numpy(y), list(CLASSES),
                         [f"{name}-{i:06d}" for i in range(len(y))], name)


def to_judge(images: torch.Tensor) -> torch.Tensor:
    """uint8 images averaged down to the judge's 32 px (uint8 again)."""
    if images.shape[-1] == JUDGE_SIZE:
        return images
    x = F.adaptive_avg_pool2d(images.float(), JUDGE_SIZE)
    return x.round().clamp(0, 255).to(torch.uint8)


def judge_figures(judge, gen: torch.Tensor, gen_y: np.ndarray, real: torch.Tensor, real_y: np.ndarray,
                  seed: int) -> dict:
    logits_g, fg = cnn.predict(judge, to_judge(gen))
    _, fr = cnn.predict(judge, to_judge(real))
    pred = logits_g.argmax(1)
    acc, spreads, fds = [], [], []
    for c in range(len(CLASSES)):
        a, b = fr[real_y == c], fg[gen_y == c]
        acc.append(float((pred[gen_y == c] == c).mean()))
        spreads.append(mean_pairwise_distance(b, 500) / mean_pairwise_distance(a, 500))
        pair = MetricInputs(real=a, fake=b, fake_labels=np.zeros(len(b)), fake_pred=np.zeros(len(b)), num_classes=1,
                            copy_threshold=0.0)
        fds.append(frechet_distance(pair)["frechet_distance"])
    detect = detector_accuracy(real, real_y, gen, gen_y, list(CLASSES), seed=seed)["all"]
    return {"judge_acc": float(np.mean(acc)), "judge_acc_min": float(np.min(acc)),
            "spread": float(np.mean(spreads)), "spread_min": float(np.min(spreads)),
            "fd": float(np.mean(fds)), "detect": detect, "per_class_acc": [round(a, 3) for a in acc]}


def run_recipe(name: str, args, train: LabeledImages, judge, real: torch.Tensor, real_y: np.ndarray,
               tmp: Path) -> dict:
    cfg = build_config(sets=[*RECIPES[name], f"image.size={args.size}", f"train.max_seconds={args.budget}",
                             f"seed={args.seed}", f"balance.sampling_strategy=target:{2 * args.per_class}",
                             *args.sets])
    layout = RunLayout.for_output(tmp / name)
    stage_load(train, cfg, layout)
    t = time.perf_counter()
    try:
        summary = stage_train(cfg, layout)
    except TrainingDiverged as e:  # a recipe that cannot be trained is a result
        return {"recipe": name, "diverged": str(e), "train_s": time.perf_counter() - t}
    seconds = time.perf_counter() - t
    models = TrainedModels(layout, prepare_device(cfg.train))
    images, labels = [], []
    for c, cname in enumerate(CLASSES):
        s = generate(models.gan_for(cname), {c: args.n}, args.seed, device=models.device,
                     precision=cfg.train.precision)
        images.append(s.images)
        labels.append(s.labels.numpy())
    gen, gen_y = torch.cat(images), np.concatenate(labels)
    runs = summary["runs"].values()
    return {"recipe": name, "train_s": seconds, "steps": [r["step"] for r in runs],
            "best_step": [r["best_step"] for r in runs],
            **judge_figures(judge, gen, gen_y, real, real_y, args.seed)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--budget", type=float, default=900)
    p.add_argument("--recipes", default=",".join(RECIPES))
    p.add_argument("--per-class", type=int, default=400)
    p.add_argument("--n", type=int, default=200, help="generated images a class")
    p.add_argument("--judge-per-class", type=int, default=1000)
    p.add_argument("--judge-steps", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="sets", action="append", default=[])
    args = p.parse_args()
    k = len(CLASSES)
    t = time.perf_counter()
    train = labeled(*make_split([args.per_class] * k, args.size, seed=args.seed), f"colours-{args.size}-train")
    jx, jy = make_split([args.judge_per_class] * k, JUDGE_SIZE, seed=args.seed + 1000)
    real_x, real_y = make_split([args.n] * k, args.size, seed=args.seed + 2000)
    built = time.perf_counter() - t
    t = time.perf_counter()
    judge = cnn.train_cnn(torch.from_numpy(jx), torch.from_numpy(jy), k, steps=args.judge_steps, seed=args.seed)
    real = torch.from_numpy(real_x)
    other_x, other_y = make_split([args.n] * k, args.size, seed=args.seed + 3000)  # real against real: the floor
    judge_real = judge_figures(judge, torch.from_numpy(other_x), other_y, real, real_y, args.seed)
    v = package_versions()
    print(f"# colour quality: colour objects {args.size} px RGB, {args.per_class} training images a class "
          f"(built with the {args.judge_per_class}-a-class judge split and the {args.n}-a-class real test split in "
          f"{built:.0f} s); budget {args.budget:.0f} s of training a recipe; seed {args.seed}; "
          f"{platform.machine()} {platform.processor() or '?'}, {torch.get_num_threads()} threads; torch "
          f"{v['torch']}, augment {v.get('augment', '?')}; extra settings {args.sets or 'none'}", flush=True)
    print(f"# judge: SmallCNN at {JUDGE_SIZE} px, {args.judge_steps} steps ({time.perf_counter() - t:.0f} s); on "
          f"real test images acc {judge_real['judge_acc']:.3f} (worst class {judge_real['judge_acc_min']:.3f}); "
          f"real-vs-real spread {judge_real['spread']:.3f}, FD {judge_real['fd']:.2f}, detect "
          f"{judge_real['detect']:.3f}", flush=True)
    print("recipe | train s | steps | best step | judge acc (worst) | spread (weakest) | FD | detect | per class")
    with tempfile.TemporaryDirectory(prefix="colour_quality_") as tmp:
        for name in args.recipes.split(","):
            r = run_recipe(name, args, train, judge, real, real_y, Path(tmp))
            if "diverged" in r:
                print(f"{name} | {r['train_s']:.0f} | diverged: {r['diverged']}", flush=True)
                continue
            steps = r["steps"][0] if len(set(r["steps"])) == 1 else r["steps"]
            best = r["best_step"][0] if len(set(r["best_step"])) == 1 else r["best_step"]
            print(f"{name} | {r['train_s']:.0f} | {steps} | {best} | {r['judge_acc']:.3f} ({r['judge_acc_min']:.3f}) "
                  f"| {r['spread']:.3f} ({r['spread_min']:.3f}) | {r['fd']:.2f} | {r['detect']:.3f} | "
                  f"{r['per_class_acc']}", flush=True)


if __name__ == "__main__":
    main()
