"""Training speed on a quiet and on a busy CPU, per thread count and OpenMP wait policy.

A shared CI runner, a laptop or a nightly box often has another busy process. On 2 cores, PyTorch's
OpenMP threads spin while they wait for each other; a competing process that takes one core then
stalls every parallel region. For each setting below, a fresh process (OpenMP reads its environment
once, at start) trains the default model on MNIST at 28 px, batch 64, bf16 where the CPU has AMX, and
reports the median images/s over timed intervals, first alone and then beside one single-threaded
busy loop (a `yes > /dev/null`). Run it on an otherwise idle machine.

    python benchmarks/busy_machine.py [--steps 60] [--repeats 3] [--settings 'all cores,adaptive (the default)']

With --phases SECONDS, each setting instead trains for three phases of that many seconds in one
process: quiet, beside the busy loop, quiet again, and reports the median images/s of each phase (its
first 5 s left out, the time 'adaptive' takes to notice) and the thread counts it ran with: what a
competitor that comes and goes costs while the run adapts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = {  # name: (environment, train.threads)
    "all cores": ({}, 0),  # what torch does unasked: one thread per core, GNU OpenMP's default spin-then-sleep
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, 0),  # waiting threads sleep at once
    "one-thread": ({"OMP_NUM_THREADS": "1"}, 0),
    "passive-one-thread": ({"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}, 0),
    "auto": ({}, "auto"),  # train.threads = 'auto': all cores but one (the default before adaptive)
    "adaptive (the default)": ({}, "adaptive"),  # train.threads = 'adaptive': the cores other processes leave
}
INTERVAL = 10  # steps per timed interval
GRACE = 5.0  # seconds of each phase left out of its median (with --phases)


def child(steps: int, threads: str, seconds: float = 0) -> None:
    """Train `steps` steps (or for `seconds`, when given) and print one JSON line: images/s, seconds since
    the start and thread count per interval of INTERVAL steps. train.threads = 'adaptive' is governed as
    augment.train does it."""
    import numpy as np
    import torch
    from shared_data import MNIST

    from augment.config import build_config
    from augment.data import LabeledImages
    from augment.device import ALL_CORES, prepare_device
    from augment.precision import resolve_precision
    from augment.thread_governor import ThreadGovernor
    from augment.train import new_state, step_parts, train_step

    d = np.load(MNIST)
    x, y = torch.from_numpy(d["x_train"][:10000])[:, None].contiguous(), torch.from_numpy(d["y_train"][:10000])
    data = LabeledImages(x, y.long(), [str(i) for i in range(10)], [f"m{i}" for i in range(len(y))], "mnist")
    cfg = build_config(sets=["image.size=28", "train.batch_size=64", "train.device=cpu", f"train.threads={threads}"])
    device = prepare_device(cfg.train)
    governor = ThreadGovernor.for_training(cfg.train.threads, device, ALL_CORES)
    precision = resolve_precision(device, cfg.train.precision)
    state = new_state(cfg, data, device, None)
    parts = step_parts(cfg, data, state, device, precision)
    decay = cfg.train.ema_decay if state.G_ema is not None else None
    rates, at, counts = [], [], []
    t0 = time.perf_counter()
    if seconds:  # --phases: the parent times its phases from here
        (Path(tempfile.gettempdir()) / f"busy-machine-{os.getpid()}.started").touch()
    if governor is not None:
        governor.start(torch.get_num_threads())
    while (time.perf_counter() - t0 < seconds) if seconds else len(rates) < steps // INTERVAL:
        t = time.perf_counter()
        for _ in range(INTERVAL):
            if governor is not None:
                governor.tick()
            train_step(state, parts, decay)
        rates.append(INTERVAL * cfg.train.batch_size / (time.perf_counter() - t))
        at.append(time.time())  # wall clock: the parent times the phases on it
        counts.append(torch.get_num_threads())
    print(json.dumps({"rates": rates, "at": at, "counts": counts, "precision": precision}))


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


def measure_phases(setting: tuple[dict, int | str], seconds: float) -> list[dict]:
    """Quiet, busy, quiet in one training process: the competitor starts `seconds` after the child's first
    interval and runs for `seconds`; the child trains for 3x `seconds`. Per phase the median images/s of the
    intervals that ended in it, after its first GRACE seconds (the quiet phase: after its first interval),
    and the thread counts seen. Times are the wall clock, shared by both processes."""
    env, threads = setting
    proc = subprocess.Popen([sys.executable, __file__, "--child", "--seconds", str(3 * seconds), "--threads",
                             json.dumps(threads)], env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
    ready = Path(tempfile.gettempdir()) / f"busy-machine-{proc.pid}.started"
    while not ready.exists() and proc.poll() is None:
        time.sleep(0.1)
    ready.unlink(missing_ok=True)
    time.sleep(seconds)
    busy_from = time.time()
    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(seconds)
    finally:
        competitor.kill()
        competitor.wait()
    busy_to = time.time()
    out, _ = proc.communicate()
    row = json.loads(out.strip().splitlines()[-1])
    ends = row["at"]
    windows = [(ends[0], busy_from), (busy_from + GRACE, busy_to), (busy_to + GRACE, float("inf"))]
    phases = []
    for lo, hi in windows:
        picked = [(r, c) for r, at, c in zip(row["rates"], ends, row["counts"]) if lo < at <= hi]
        phases.append({"median": statistics.median([r for r, _ in picked]) if picked else float("nan"),
                       "threads": sorted({c for _, c in picked})})
    return phases


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--settings", default=",".join(SETTINGS))
    p.add_argument("--repeats", type=int, default=1, help="measure each setting this many times (quiet, busy)")
    p.add_argument("--phases", type=float, default=0, help="seconds per phase: quiet, busy, quiet (one process)")
    p.add_argument("--seconds", type=float, default=0, help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", default="0", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.steps, args.threads, args.seconds)
        return
    import torch

    print(f"# busy-machine benchmark: {os.cpu_count()} cores, torch {torch.__version__}; default model 28 px, "
          f"batch 64, {args.steps} steps per measurement (median of {INTERVAL}-step intervals after the first); "
          "busy = one `while True: pass` process beside it", flush=True)
    if args.phases:
        print(f"# phases of {args.phases:g} s in one process: quiet, busy, quiet (median img/s after each "
              f"phase's first {GRACE:g} s; threads seen)")
        print(f"{'setting':36s} {'quiet':>14s} {'busy':>14s} {'quiet again':>14s} {'busy slowdown':>14s}")
        for name in (s.strip() for s in args.settings.split(",")):
            for _ in range(args.repeats):
                ph = measure_phases(SETTINGS[name], args.phases)
                cells = [f"{p['median']:7.1f} {'/'.join(map(str, p['threads'])):>6s}" for p in ph]
                print(f"{name:36s} {cells[0]:>14s} {cells[1]:>14s} {cells[2]:>14s} "
                      f"{ph[0]['median'] / ph[1]['median']:13.2f}x", flush=True)
        return
    print(f"{'setting':36s} {'threads (quiet; busy)':>21s} {'quiet img/s':>12s} {'busy img/s':>11s} "
          f"{'busy slowdown':>14s}")
    for name in (s.strip() for s in args.settings.split(",")):
        for _ in range(args.repeats):
            quiet, busy = measure(SETTINGS[name], args.steps, False), measure(SETTINGS[name], args.steps, True)
            seen = "; ".join("/".join(map(str, sorted(set(r["counts"])))) for r in (quiet, busy))
            print(f"{name:36s} {seen:>21s} {quiet['median']:12.1f} {busy['median']:11.1f} "
                  f"{quiet['median'] / busy['median']:13.2f}x", flush=True)


if __name__ == "__main__":
    main()
