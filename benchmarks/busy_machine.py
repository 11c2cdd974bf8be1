"""Training speed on a quiet and on a busy CPU, per thread count and OpenMP wait policy.

A shared CI runner, a laptop or a nightly box often has another busy process. On 2 cores, PyTorch's
OpenMP threads spin while they wait for each other; a competing process that takes one core then
stalls every parallel region. For each setting below, a fresh process (OpenMP reads its environment
once, at start) trains the default model on MNIST at 28 px, batch 64, bf16 where the CPU has AMX, and
reports the median images/s over timed intervals, first alone and then beside one single-threaded
busy loop (a `yes > /dev/null`). Run it on an otherwise idle machine.

    python benchmarks/busy_machine.py [--steps 60] [--repeats 3] [--settings 'all cores,auto (the default)']
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SETTINGS = {  # name: (environment, train.threads)
    "all cores": ({}, 0),  # what torch does unasked: one thread per core, GNU OpenMP's default spin-then-sleep
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, 0),  # waiting threads sleep at once
    "one-thread": ({"OMP_NUM_THREADS": "1"}, 0),
    "passive-one-thread": ({"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}, 0),
    "auto (the default)": ({}, "auto"),  # train.threads = 'auto': all cores but one
}
INTERVAL = 10  # steps per timed interval


def child(steps: int, threads: str) -> None:
    """Train `steps` steps and print one JSON line: images/s per interval of INTERVAL steps."""
    import numpy as np
    import torch
    from shared_data import MNIST

    from augment.config import build_config
    from augment.data import LabeledImages
    from augment.device import prepare_device
    from augment.precision import resolve_precision
    from augment.train import new_state, step_parts, train_step

    d = np.load(MNIST)
    x, y = torch.from_numpy(d["x_train"][:10000])[:, None].contiguous(), torch.from_numpy(d["y_train"][:10000])
    data = LabeledImages(x, y.long(), [str(i) for i in range(10)], [f"m{i}" for i in range(len(y))], "mnist")
    cfg = build_config(sets=["image.size=28", "train.batch_size=64", "train.device=cpu", f"train.threads={threads}"])
    device = prepare_device(cfg.train)
    precision = resolve_precision(device, cfg.train.precision)
    state = new_state(cfg, data, device, None)
    parts = step_parts(cfg, data, state, device, precision)
    decay = cfg.train.ema_decay if state.G_ema is not None else None
    rates = []
    for _ in range(steps // INTERVAL):
        t = time.perf_counter()
        for _ in range(INTERVAL):
            train_step(state, parts, decay)
        rates.append(INTERVAL * cfg.train.batch_size / (time.perf_counter() - t))
    print(json.dumps({"rates": rates, "threads": torch.get_num_threads(), "precision": precision}))


def measure(setting: tuple[dict, int | str], steps: int, busy: bool) -> dict:
    env, threads = setting
    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        time.sleep(0.5 if busy else 0)
        out = subprocess.run([sys.executable, __file__, "--child", "--steps", str(steps), "--threads",
                              json.dumps(threads)], env={**os.environ, **env},
                             capture_output=True, text=True, check=True).stdout
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    row = json.loads(out.strip().splitlines()[-1])
    return {**row, "median": statistics.median(row["rates"][1:])}  # the first interval warms up


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--settings", default=",".join(SETTINGS))
    p.add_argument("--repeats", type=int, default=1, help="measure each setting this many times (quiet, busy)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", default="0", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.steps, args.threads)
        return
    import torch

    print(f"# busy-machine benchmark: {os.cpu_count()} cores, torch {torch.__version__}; default model 28 px, "
          f"batch 64, {args.steps} steps per measurement (median of {INTERVAL}-step intervals after the first); "
          "busy = one `while True: pass` process beside it", flush=True)
    print(f"{'setting':36s} {'threads':>7s} {'quiet img/s':>12s} {'busy img/s':>11s} {'busy slowdown':>14s}")
    for name in (s.strip() for s in args.settings.split(",")):
        for _ in range(args.repeats):
            quiet, busy = measure(SETTINGS[name], args.steps, False), measure(SETTINGS[name], args.steps, True)
            print(f"{name:36s} {quiet['threads']:7d} {quiet['median']:12.1f} {busy['median']:11.1f} "
                  f"{quiet['median'] / busy['median']:13.2f}x", flush=True)


if __name__ == "__main__":
    main()
