"""Does the external judge need width 32? The 'cnn' judge (score.external) is the score stage's largest cost on
2 CPU cores; the same SmallCNN recipe at width 16 costs about a third. This fits both on what the pipeline
fits the judge on (the stratified 80% of the real images, augment.score.external.holdout_split) of
Fashion-MNIST-LT (fashion_lt.py's split, per seed) and reads the full test split: balanced accuracy, the
three smallest classes' recall, fit seconds, and the paired bootstrap interval of width 16 - width 32
(seeds and test images within class resampled). Run it on a quiet machine.

    python benchmarks/judge_width.py [--seeds 5] [--steps 1000] [--widths 32,16]
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
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--widths", default="32,16")
    args = p.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    x_test, y_test = test_split("fashion", 28)
    v = package_versions()
    print(f"# judge width, Fashion-MNIST-LT: seeds 0-{args.seeds - 1}; SmallCNN recipe, {args.steps} steps of batch "
          f"128, class-balanced batches, on the pipeline's 80% split; cpu ({platform.machine()}, "
          f"{torch.get_num_threads()} threads); torch {v['torch']}, augment {v['augment']}", flush=True)
    correct: dict[int, list[np.ndarray]] = {w: [] for w in widths}
    for seed in range(args.seeds):
        x_tr, y_tr, lt = long_tailed("fashion", seed, 28)
        x, y = x_tr[lt][:, None], y_tr[lt]
        tr, _ = holdout_split(y, seed)
        tail = tail_classes(y, 10)
        line = []
        for w in widths:
            t0 = time.perf_counter()
            model = cnn.train_cnn(torch.from_numpy(x[tr]), torch.from_numpy(y[tr]).long(), 10, steps=args.steps,
                                  seed=seed, width=w)
            seconds = time.perf_counter() - t0
            pred = cnn.predict(model, torch.from_numpy(x_test))[0].argmax(1)
            ok = pred == y_test
            correct[w].append(ok)
            recall = [ok[y_test == c].mean() for c in range(10)]
            line.append(f"width {w}: {seconds:.1f} s, balanced accuracy {np.mean(recall):.4f}, "
                        f"tail recall {np.mean([recall[c] for c in tail]):.4f}")
        print(f"seed {seed}: " + "; ".join(line), flush=True)
    base = widths[0]
    for w in widths[1:]:
        d = paired_bootstrap(np.stack(correct[w]), np.stack(correct[base]), y_test)
        verdict = " (noise)" if d.low <= 0 <= d.high else ""
        print(f"width {w} - width {base}: {d.mean:+.4f} [{d.low:+.4f}, {d.high:+.4f}]{verdict}")


if __name__ == "__main__":
    main()
