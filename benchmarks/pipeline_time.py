"""Where the default pipeline's wall time goes: the Fashion-MNIST-LT folder (benchmarks/fashion_lt.py's split,
9,922 PNG images) run through the CLI with the defaults, then seconds per stage (dataset.json `stage_seconds`),
training steps/s, the non-training stages' share of the wall time, the fraction of the device's measured
matmul peak that the training step reaches (FLOPs per step from benchmarks/throughput.py), and the external
judge's held-out balanced accuracy (its quality must not change when the pipeline gets faster).

    python benchmarks/pipeline_time.py [--seed 0] [--set key=value ...] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import torch
from fashion_lt import COUNTS, run_cli, write_folder
from shared_data import fashion_mnist
from throughput import matmul_peak, step_flops

from augment.config import build_config
from augment.data import LabeledImages
from augment.data.longtail import subsample_per_class
from augment.precision import resolve_precision
from augment.provenance import package_versions


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="sets", action="append", default=[])
    p.add_argument("--keep", type=Path)
    args = p.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="pipeline_time_"))
    x, y = fashion_mnist("train")
    rows = subsample_per_class(y, COUNTS, args.seed)
    folder = write_folder(root / "data", x, y, rows)
    wall = run_cli(folder, root / "out", args.seed, args.sets)
    meta = json.loads((root / "out" / "dataset.json").read_text())
    seconds, training = meta["stage_seconds"], meta["training"]
    device = torch.device(str(training["device"]).split(":")[0])
    precision = resolve_precision(device, meta["config"]["train"]["precision"])
    cfg = build_config(sets=[f"seed={args.seed}", *args.sets, "image.size=28"])
    data = LabeledImages(torch.from_numpy(x[rows][:, None].copy()), torch.from_numpy(y[rows]),
                         [str(i) for i in range(10)], [str(i) for i in rows])
    flops = step_flops(cfg, data, device)
    peak = matmul_peak(device, torch.bfloat16 if precision == "bf16" else torch.float32)
    steps_per_s = training["steps"] / max(training["seconds"], 1e-9)
    total = sum(seconds.values())
    v = package_versions()
    print(f"# pipeline time: Fashion-MNIST-LT seed {args.seed} ({len(rows)} PNG images), `augment run` with "
          f"{args.sets or 'the defaults'}; device {device} ({platform.machine()}, {platform.processor() or '?'}, "
          f"{torch.get_num_threads()} threads here), precision {precision}; torch {v['torch']}, augment "
          f"{meta['augment_version']}")
    print(f"wall {wall:.1f} s (CLI process); stages {total:.1f} s: " +
          ", ".join(f"{k} {s:.1f}" for k, s in seconds.items()))
    print(f"non-training stages: {total - seconds.get('train', 0):.1f} s = {1 - seconds.get('train', 0) / total:.0%} "
          "of the stages' time")
    print(f"training: {training['steps']} steps in {training['seconds']:.1f} s = {steps_per_s:.1f} steps/s at batch "
          f"{meta['config']['train']['batch_size']}; {flops / 1e9:.2f} GFLOP a step; "
          f"{flops * steps_per_s / peak:.2%} of the measured {precision} matmul peak ({peak / 1e12:.2f} TFLOP/s); "
          f"CPU threads {training.get('threads')}")
    judge = meta.get("external_classifier") or {}
    reading = judge.get("holdout_balanced_accuracy", float("nan"))
    print(f"judge ({judge.get('kind')}): held-out balanced accuracy {reading:.4f} "
          f"on {judge.get('n_holdout')} real images (trained on {judge.get('n_train')})")
    share = meta.get("synthetic_share") or {}
    print(f"synthetic share {share.get('share')}: {share.get('reason')}")


if __name__ == "__main__":
    main()
