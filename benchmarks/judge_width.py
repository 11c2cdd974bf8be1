"""Can the external judge be cheaper at the same quality? The 'cnn' judge (score.external) is the score stage's
largest cost on 2 CPU cores. Each arm is a width, a step count and a learning-rate schedule of the SmallCNN
recipe (WIDTH/STEPS/SCHEDULE; the first arm is the baseline, the judge as it ships). Every arm is fitted on
what the pipeline fits the judge on (the stratified 80% of the real images, augment.score.external.holdout_split)
of Fashion-MNIST-LT (fashion_lt.py's split, per seed) and reads the full test split: balanced accuracy, the
three smallest classes' recall, fit seconds, and the paired bootstrap interval of arm - baseline (seeds and
test images within class resampled). Run it on a quiet machine.

    python benchmarks/judge_width.py [--seeds 5] [--arms 32/1000/constant,16/1000/constant]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from fashion_lt import long_tailed, test_split

from augment.downstream import tail_classes
from augment.paired import paired_bootstrap
from augment.provenance import package_versions
from augment.score import cnn
from augment.score.external import holdout_split


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--arms", default="32/1000/constant,16/1000/constant",
                   help="comma-separated WIDTH/STEPS/SCHEDULE; the first is the baseline")
    args = p.parse_args()
    arms = [(int(w), int(n), sched) for w, n, sched in (a.split("/") for a in args.arms.split(","))]
    x_test, y_test = test_split("fashion", 28)
    v = package_versions()
    print(f"# judge recipe, Fashion-MNIST-LT: seeds 0-{args.seeds - 1}; SmallCNN recipe (batch 128, class-balanced "
          f"batches, Adam lr {cnn.LR:g}), arms {args.arms}, on the pipeline's 80% split; cpu ({platform.machine()}, "
          f"{torch.get_num_threads()} threads); torch {v['torch']}, augment {v['augment']}", flush=True)
    correct: dict[tuple, list[np.ndarray]] = {a: [] for a in arms}
    for seed in range(args.seeds):
        x_tr, y_tr, lt = long_tailed("fashion", seed, 28)
        x, y = x_tr[lt][:, None], y_tr[lt]
        tr, _ = holdout_split(y, seed)
        tail = tail_classes(y, 10)
        line = []
        for arm in arms:
            w, steps, schedule = arm
            t0 = time.perf_counter()
            model = cnn.train_cnn(torch.from_numpy(x[tr]), torch.from_numpy(y[tr]).long(), 10, steps=steps,
                                  seed=seed, width=w, schedule=schedule)
            seconds = time.perf_counter() - t0
            pred = cnn.predict(model, torch.from_numpy(x_test))[0].argmax(1)
            ok = pred == y_test
            correct[arm].append(ok)
            recall = [ok[y_test == c].mean() for c in range(10)]
            line.append(f"{w}/{steps}/{schedule}: {seconds:.1f} s, balanced accuracy {np.mean(recall):.4f}, "
                        f"tail recall {np.mean([recall[c] for c in tail]):.4f}")
        print(f"seed {seed}: " + "; ".join(line), flush=True)
    base = arms[0]
    for arm in arms[1:]:
        d = paired_bootstrap(np.stack(correct[arm]), np.stack(correct[base]), y_test)
        verdict = " (noise)" if d.low <= 0 <= d.high else ""
        print(f"{'/'.join(map(str, arm))} - {'/'.join(map(str, base))}: {d.mean:+.4f} [{d.low:+.4f}, {d.high:+.4f}]"
              f"{verdict}")


if __name__ == "__main__":
    main()
