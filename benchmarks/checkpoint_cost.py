"""What checkpoints cost: wall time of the default training on full MNIST at several checkpoint cadences.

Each cadence trains `--steps` default steps from a cold start with the product's own check at every
checkpoint (a logistic regression on the real images reading 64 generated images per class, as
`stage_train` does), so the difference between rows is what checkpoints, sample grids and checks cost.

    python benchmarks/checkpoint_cost.py [--steps 1000] [--every 100,500,1000] [--repeats 1]

Runs one after another in this process (never beside another job: the clock is the measure).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from time_to_quality import mnist_train

from augment.config import build_config
from augment.device import thread_count
from augment.score.probe import PixelProbe
from augment.train import train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--every", default="100,500,1000")
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args()
    data = mnist_train()
    print(f"# checkpoint cost: full MNIST, default recipe, {args.steps} steps, seed 0, CPU threads "
          f"{thread_count(build_config().train.threads)}, torch {torch.__version__}", flush=True)
    for rep in range(args.repeats):
        for every in (int(e) for e in args.every.split(",")):
            cfg = build_config(sets=[f"train.steps={args.steps}", f"train.checkpoint_every={every}", "seed=0"])
            probe = PixelProbe(data, seed=0)  # fitted once per run, as stage_train does; not timed
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                train(data, cfg, Path(tmp) / "run", quality=probe.quality_fn())
                print(f"repeat {rep}: checkpoint_every {every}: {time.perf_counter() - t:.1f} s", flush=True)


if __name__ == "__main__":
    main()
