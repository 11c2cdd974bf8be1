"""Time to quality: how many seconds of training until an independent judge reads generated digits as their class.

From a cold start on the full MNIST train split (60,000 images, balanced sampling) each arm trains
for up to --budget seconds (wall time of the training loop; checks excluded). Every --check-every
steps the judge (the SmallCNN recipe, trained once per invocation on the same images) reads 100
generated images per class. An arm reaches quality at the first check where it reads >= 95% as their
class. At that check (or the budget's last one) it also reports what class correctness alone can
hide, on the same 1,000 images against 100 real images per class:

  spread  per class, the mean pairwise distance of generated images in the judge's feature space over
          that of real images (1.0: as spread out as real; lower: less diverse); mean and weakest class
  FD      per class Frechet distance in the judge's feature space, mean over classes
  detect  held-out accuracy of a fresh real-vs-generated CNN, the one quality.csv reports
          (augment.score.detector: equal real and generated images per class; 0.5: indistinguishable)

    python benchmarks/time_to_quality.py [--budget 120] [--seeds 3] [--check-every 100] [--whole-budget]
        [--arm NAME=key=value,key=value ...]   (default arms: 'default' only; settings on top of the defaults)

With --whole-budget an arm trains for the whole budget, as `augment run --set train.max_seconds=120` does,
and the accuracy and gates are those of the budget's last check (the seconds to 95% still the first check
that reached it): what a user's budget buys, where the default stops at 95%.

Arms and seeds run one after another in this process (never beside another job: the clock is the measure).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from shared_data import MNIST

from augment.config import build_config
from augment.data import LabeledImages
from augment.device import thread_count
from augment.score import cnn
from augment.score.detector import detector_accuracy
from augment.score.metrics import MetricInputs, frechet_distance
from augment.score.probe import mean_pairwise_distance
from augment.train import train

TARGET = 0.95


class Reached(Exception):
    """Stops training at the first check that reaches the target or is past the budget."""


def parse_arm(text: str) -> tuple[str, list[str]]:
    """'name=key=value,key=value' -> (name, ['key=value', ...]); 'name' alone is the defaults."""
    name, _, sets = text.partition("=")
    return name, [s for s in sets.split(",") if s]


def mnist_train() -> LabeledImages:
    d = np.load(MNIST)
    x, y = torch.from_numpy(d["x_train"]), torch.from_numpy(d["y_train"].astype(np.int64))
    return LabeledImages(x[:, None].contiguous(), y, [str(i) for i in range(10)], [str(i) for i in range(len(y))])


def diversity(gen: torch.Tensor, gen_y: np.ndarray, real: torch.Tensor, real_y: np.ndarray, judge,
              seed: int) -> dict:
    """Spread relative to real, Frechet distance per class and a fresh detector, on the judge's features."""
    _, fg = cnn.predict(judge, gen)
    _, fr = cnn.predict(judge, real)
    spreads, fds = [], []
    for c in range(10):
        a, b = fr[real_y == c], fg[gen_y == c]
        spreads.append(mean_pairwise_distance(b) / mean_pairwise_distance(a))
        pair = MetricInputs(real=a, fake=b, fake_labels=np.zeros(len(b)), fake_pred=np.zeros(len(b)), num_classes=1,
                            copy_threshold=0.0)
        fds.append(frechet_distance(pair)["frechet_distance"])
    return {"spread_mean": float(np.mean(spreads)), "spread_min": float(np.min(spreads)),
            "fd_mean": float(np.mean(fds)),
            "detect": detector_accuracy(real, real_y, gen, gen_y, [str(c) for c in range(10)], seed=seed)["all"]}


def run_arm(sets: list[str], seed: int, data: LabeledImages, budget: float, check_every: int, judge,
            real: torch.Tensor, real_y: np.ndarray, whole_budget: bool = False) -> dict:
    cfg = build_config(sets=["train.steps=1000000", f"train.checkpoint_every={check_every}", "train.log_every=50",
                             "train.keep_checkpoints=1", f"seed={seed}", *sets])
    clock = {"start": time.perf_counter(), "checks": 0.0, "history": [], "last": None}

    def quality(sample):
        t = time.perf_counter()
        images, labels = sample(100)
        acc = float((cnn.predict(judge, images)[0].argmax(1) == labels.numpy()).mean())
        clock["history"].append((t - clock["start"] - clock["checks"], acc))
        clock["last"] = (images, labels.numpy())
        clock["checks"] += time.perf_counter() - t
        if (acc >= TARGET and not whole_budget) or clock["history"][-1][0] >= budget:  # training time only
            raise Reached
        return {"score": acc}

    with tempfile.TemporaryDirectory() as tmp:
        try:
            train(data, cfg, Path(tmp) / "run", quality=quality)
        except Reached:
            pass
    steps = check_every * len(clock["history"])
    hist = clock["history"]
    reached = [t for t, a in hist if a >= TARGET and t <= budget]
    images, labels = clock["last"]
    in_budget = [a for t, a in hist if t <= budget]
    return {"seconds_to_95": reached[0] if reached else None, "final_accuracy": in_budget[-1] if in_budget else 0.0,
            "best_accuracy": max(a for _, a in hist), "steps": steps, "seconds": hist[-1][0],
            **diversity(images, labels, real, real_y, judge, seed)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=120)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--check-every", type=int, default=100)
    p.add_argument("--arm", action="append", default=[], help="NAME=key=value,key=value (repeatable)")
    p.add_argument("--judge-steps", type=int, default=1000)
    p.add_argument("--whole-budget", action="store_true", help="train the whole budget; gates at its last check")
    args = p.parse_args()
    arms = [parse_arm(a) for a in (args.arm or ["default"])]
    data = mnist_train()
    test = np.load(MNIST)
    t = time.perf_counter()
    judge = cnn.train_cnn(data.images, data.labels, 10, steps=args.judge_steps)
    judge_acc = (cnn.predict(judge, torch.from_numpy(test["x_test"])[:, None])[0].argmax(1) == test["y_test"]).mean()
    rng = np.random.default_rng(0)
    real_idx = np.concatenate([rng.choice(np.flatnonzero(test["y_test"] == c), 100, replace=False) for c in range(10)])
    real = torch.from_numpy(test["x_test"][real_idx])[:, None].contiguous()
    real_y = test["y_test"][real_idx]
    threads = thread_count(build_config().train.threads)
    gates_at = "gates at the budget's last check" if args.whole_budget else "gates at the first check at 95%"
    print(f"# time to quality on MNIST (60,000 train images), CPU, training threads {threads} (train.threads "
          f"default, unless an arm sets it), torch "
          f"{torch.__version__}; judge SmallCNN {args.judge_steps} steps ({time.perf_counter() - t:.0f} s), test "
          f"accuracy {judge_acc:.4f}; budget {args.budget:.0f} s of training per run, checks every "
          f"{args.check_every} steps on 100 images per class (their time excluded); "
          f"{gates_at}"
          f"; diversity against 100 real "
          f"test images per class; seeds 0..{args.seeds - 1}", flush=True)
    print(f"{'arm':22s} {'seed':>4s} {'to 95%':>7s} {'acc':>6s} {'steps':>6s} {'spread':>7s} {'min':>6s} "
          f"{'FD':>7s} {'detect':>7s}", flush=True)
    for name, sets in arms:
        rows = []
        for seed in range(args.seeds):
            r = run_arm(sets, seed, data, args.budget, args.check_every, judge, real, real_y, args.whole_budget)
            rows.append(r)
            to95 = f"{r['seconds_to_95']:.0f} s" if r["seconds_to_95"] is not None else "-"
            print(f"{name:22s} {seed:4d} {to95:>7s} {r['final_accuracy']:6.3f} {r['steps']:6d} "
                  f"{r['spread_mean']:7.3f} {r['spread_min']:6.3f} {r['fd_mean']:7.2f} {r['detect']:7.3f}", flush=True)
        hits = [r["seconds_to_95"] for r in rows if r["seconds_to_95"] is not None]
        mean = {k: np.mean([r[k] for r in rows]) for k in ("final_accuracy", "spread_mean", "fd_mean", "detect")}
        print(f"{name:22s} {'all':>4s} reached {len(hits)}/{len(rows)}"
              f"{f' (median {statistics.median(hits):.0f} s)' if hits else ''}; accuracy {mean['final_accuracy']:.3f}; "
              f"spread {mean['spread_mean']:.3f} (min {min(r['spread_min'] for r in rows):.3f}); FD "
              f"{mean['fd_mean']:.2f}; detect {mean['detect']:.3f}; settings {sets or 'defaults'}", flush=True)


if __name__ == "__main__":
    main()
