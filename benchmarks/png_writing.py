"""How fast does the export write its PNG files? N images in 20 class folders, written by PIL on a thread pool
(the writer before augment.png_files) and by `augment.png_files.write_pngs` (direct encoder, one block per core,
this process included); arms alternate, fresh folders each time. Into tmpfs by default, so the figure is the CPU's
(a disk adds its own per-file cost). With --sync DIR: how long making as many fresh files on that disk durable
takes, fsync of every file and folder (8 threads) against one syncfs (`augment.atomic.fsync_tree`), alternating.
Run it on a quiet machine.

    python benchmarks/png_writing.py [--images 98000] [--size 28] [--channels 1] [--repeats 2] [--dir /dev/shm]
    python benchmarks/png_writing.py --sync /tmp [--images 98000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from augment import atomic
from augment.png_files import cpu_workers, write_pngs
from augment.provenance import package_versions


def pil_thread_pool(root: Path, paths: list[str], images: np.ndarray) -> None:
    """The writer before: PIL's save, one thread-pool job per image on min(8, cores) threads."""
    def one(i: int) -> None:
        arr = images[i][0] if images.shape[1] == 1 else images[i].transpose(1, 2, 0)
        Image.fromarray(np.ascontiguousarray(arr)).save(root / paths[i], format="PNG")

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(one, range(len(paths))))


def time_sync(folder: str, n: int, repeats: int) -> None:
    """Write n 800-byte files into 20 folders under a fresh temp folder, then time making them durable."""
    syncfs = atomic.syncfs
    arms = {"fsync every file": lambda path: False, "one syncfs": syncfs}
    print(f"# {n} files of 800 bytes in 20 folders under {folder}; {cpu_workers()} cores", flush=True)
    for rep in range(repeats):
        for name, how in arms.items():
            root = Path(tempfile.mkdtemp(dir=folder))
            try:
                for i in range(n):
                    (root / str(i % 20)).mkdir(exist_ok=True)
                    (root / str(i % 20) / f"{i}.png").write_bytes(b"x" * 800)
                atomic.syncfs = how
                t0 = time.perf_counter()
                atomic.fsync_tree(root)
                print(f"repeat {rep} {name:18s} {time.perf_counter() - t0:7.2f} s", flush=True)
            finally:
                atomic.syncfs = syncfs
                shutil.rmtree(root)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=98000)
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--channels", type=int, default=1, choices=[1, 3])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    p.add_argument("--sync", metavar="DIR", help="time making files durable on this folder's disk instead")
    args = p.parse_args()
    if args.sync:
        time_sync(args.sync, args.images, args.repeats)
        return
    rng = np.random.default_rng(0)
    images = (rng.random((args.images, args.channels, args.size, args.size)) ** 3 * 255).astype(np.uint8)
    paths = [f"{i % 20}/{i}.png" for i in range(args.images)]
    arms = {"PIL, thread pool": lambda root: pil_thread_pool(root, paths, images),
            "write_pngs": lambda root: write_pngs(root, paths, images, range(args.images))}
    print(f"# {args.images} images {args.channels}x{args.size}x{args.size} into {args.dir or 'the temp dir'}; "
          f"{platform.machine()} cpu, {cpu_workers()} cores; Pillow {Image.__version__}, "
          f"augment {package_versions()['augment']}", flush=True)
    for rep in range(args.repeats):
        for name, arm in arms.items():
            root = Path(tempfile.mkdtemp(dir=args.dir))
            try:
                for d in range(20):
                    (root / str(d)).mkdir()
                t0 = time.perf_counter()
                arm(root)
                print(f"repeat {rep} {name:18s} {time.perf_counter() - t0:7.2f} s", flush=True)
            finally:
                shutil.rmtree(root)


if __name__ == "__main__":
    main()
