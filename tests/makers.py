"""Tiny datasets the tests write to disk, and a tiny config (torchvision's fake-folder idea)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from augment.config import build_config

TINY = {
    "image": {"size": 8},
    "model": {"latent_dim": 4, "width": 4},
    # a fixed thread count: tests compare runs bit for bit ('adaptive', the default, follows the machine's load)
    "train": {"steps": 2, "batch_size": 4, "checkpoint_every": 1, "log_every": 1, "device": "cpu", "aux_steps": 5,
              "threads": "auto"},
    "score": {"external": "logreg"},
    # Bookkeeping tests keep the whole plan; tests of the 'auto' amount ask for it (a short probe).
    "balance": {"synthetic_share": "full", "probe_steps": 20},
}
# A two-step GAN makes noise: these settings keep every candidate the plan needs, so that tests about
# layout and bookkeeping do not depend on how good the images are.
KEEP_ALL = ("select.min_aux_prob=0.0", "select.min_ext_prob=0.0", "select.require_agreement=false",
            "select.reject_copies=false", "select.reject_duplicates=false", 'balance.synthetic_share="full"')


def tiny_config(*sets: str, **base):
    """8 px images, 4-dim latent, width 4, 2 steps of batch 4 on the CPU; extra `key=value` overrides."""
    merged = {k: dict(v) for k, v in TINY.items()}
    for k, v in base.items():
        merged.setdefault(k, {}).update(v)
    return build_config(sets=sets, base=merged)


def bars(label: int, size: int = 8, seed: int = 0, thickness: int = 1) -> np.ndarray:
    """A grayscale image with a horizontal (label 0) or vertical (label 1) bar at a random position."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size), dtype=np.uint8)
    pos = int(rng.integers(1, size - thickness))
    if label == 0:
        img[pos:pos + thickness, :] = 255
    else:
        img[:, pos:pos + thickness] = 255
    return img


def pattern(i: int, size: int = 8, mode: str = "L") -> Image.Image:
    rng = np.random.default_rng(i)
    shape = (size, size) if mode == "L" else (size, size, 3)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


def make_image_folder(root: Path, counts: dict[str, int], size: int = 8, mode: str = "L", ext: str = "png") -> Path:
    """root/<class>/<i>.<ext> with counts[class] images each."""
    i = 0
    for name, n in counts.items():
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for _ in range(n):
            pattern(i, size, mode).save(d / f"img{i:03d}.{ext}")
            i += 1
    return root


def make_npz(path: Path, counts: list[int], size: int = 8, keys: tuple[str, str] = ("x", "y"), **extra) -> Path:
    labels = np.repeat(np.arange(len(counts)), counts)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (len(labels), size, size), dtype=np.uint8)
    np.savez(path, **{keys[0]: x, keys[1]: labels}, **extra)
    return path


def make_manifest(root: Path, rows: list[tuple[str, str]], name: str = "manifest.csv", size: int = 8) -> Path:
    """Write each row's image (if its path is relative and does not exist yet) and a path,label table."""
    import pandas as pd

    for i, (p, _) in enumerate(rows):
        f = Path(p) if Path(p).is_absolute() else root / p
        if not f.exists():
            f.parent.mkdir(parents=True, exist_ok=True)
            pattern(100 + i, size).save(f)
    df = pd.DataFrame(rows, columns=["path", "label"])
    out = root / name
    if name.endswith(".csv"):
        df.to_csv(out, index=False)
    else:
        df.to_parquet(out, index=False)
    return out


def make_read_only(parent: Path, monkeypatch) -> Path:
    """Make `parent` behave as on a read-only filesystem (root passes permission bits, not EROFS): access()
    says no for writing, and creating a file or folder in it fails with EROFS."""
    import errno
    import os

    parent.mkdir(parents=True, exist_ok=True)
    real_access, real_open, real_mkdir = os.access, os.open, os.mkdir

    def access(p, mode, *args, **kwargs):
        return False if Path(p) == parent and mode & os.W_OK else real_access(p, mode, *args, **kwargs)

    def open_(p, flags, *args, **kwargs):
        if Path(p).parent == parent and flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(p))
        return real_open(p, flags, *args, **kwargs)

    def mkdir(p, *args, **kwargs):
        if Path(p).parent == parent:
            raise OSError(errno.EROFS, "Read-only file system", str(p))
        return real_mkdir(p, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "mkdir", mkdir)
    return parent
