"""What a scheduled rerun costs when only selection settings changed: the Fashion-MNIST-LT folder
(fashion_lt.py's split, 9,922 PNG images) run twice through `python -m flows.augment_all` with the
defaults, the second time with `--change` added to the file's [defaults]. The GAN training and the 'cnn'
external judge come from the training cache the second time; this prints both runs' wall seconds and
seconds per stage (dataset.json `stage_seconds`). Run it on a quiet machine.

    python benchmarks/scheduled_rerun.py [--seed 0] [--change select.min_ext_prob=0.6] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from fashion_lt import COUNTS, write_folder
from shared_data import fashion_mnist

from augment.data.longtail import subsample_per_class
from augment.provenance import package_versions


def datasets_file(path: Path, folder: Path, out_root: Path, seed: int, change: str | None) -> Path:
    """One dataset, the defaults plus `change` (SECTION.KEY=VALUE, VALUE as TOML)."""
    extra = ""
    if change:
        key, value = change.split("=", 1)
        section, name = key.split(".", 1)
        extra = f"{section} = {{ {name} = {value} }}\n"
    path.write_text(f'out_root = "{out_root}"\n\n[defaults]\nseed = {seed}\n{extra}\n'
                    f'[[datasets]]\nname = "fashion-lt"\ndata = "{folder}"\n')
    return path


def run(config: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "flows.augment_all", "--config", str(config)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "TQDM_DISABLE": "1"},
                   cwd=Path(__file__).resolve().parents[1])
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--change", default="select.min_ext_prob=0.6")
    p.add_argument("--keep", type=Path)
    args = p.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="scheduled_rerun_"))
    x, y = fashion_mnist("train")
    folder = write_folder(root / "data", x, y, subsample_per_class(y, COUNTS, args.seed))
    v = package_versions()
    print(f"# scheduled rerun: Fashion-MNIST-LT seed {args.seed}, python -m flows.augment_all with the defaults, "
          f"then with {args.change}; cpu ({platform.machine()}, {torch.get_num_threads()} threads here); torch "
          f"{v['torch']}, prefect {v.get('prefect', '?')}, augment {v['augment']}", flush=True)
    for label, change in (("first run", None), (f"rerun, {args.change}", args.change)):
        wall = run(datasets_file(root / "datasets.toml", folder, root / "runs", args.seed, change))
        meta = json.loads((root / "runs" / "fashion-lt" / "latest" / "dataset.json").read_text())
        seconds = meta["stage_seconds"]
        print(f"{label}: wall {wall:.1f} s (flow process); " + ", ".join(f"{k} {s:.1f}" for k, s in seconds.items())
              + f"; from the cache: training {meta['training'].get('from_cache', False)}, judge "
              f"{meta['external_classifier'].get('from_cache', False)}, candidate scores "
              f"{meta.get('candidate_scores_from_cache', 0):,}", flush=True)


if __name__ == "__main__":
    main()
