"""A finished run as a PyTorch Dataset: each item is (image, label, provenance), and `.weights` feeds a
`torch.utils.data.WeightedRandomSampler`.

    ds = AugmentedImageFolder("out", transform=torchvision.transforms.ToTensor())
    sampler = WeightedRandomSampler(ds.weights, num_samples=len(ds))
    for images, labels, provenance in DataLoader(ds, batch_size=64, sampler=sampler): ...

Deferred re-weighting over the output (the best recipe measured on MNIST-LT, docs/benchmarks.md): draw
by `ds.real_weights` (the real rows, uniformly) for the first 3/4 of the steps, then by `ds.weights`;
`ds.phase_samplers(num_samples, deferred=0.75)` gives both samplers, each with its share of the draws.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from augment.columns import provenance_names
from augment.export import check_manifest
from augment.output import read_output

IDENTITY = ("is_synthetic", "source_id", "generator", "seed", "latent_index")  # then augment.columns' provenance


class AugmentedImageFolder(torch.utils.data.Dataset):
    """The rows of a finished augment run (kept rows only by default: the real images and the synthetic
    images the output took). `classes` are the run's class names; `weights` the manifest's weight per
    item, or class-balancing weights for runs written before weights existed; `real_weights` 1 per
    real item, 0 per synthetic one."""

    def __init__(self, run: str | Path, kept_only: bool = True, transform: Callable[[Image.Image], Any] | None = None):
        self.root = Path(run)
        meta, rows = read_output(self.root)
        check_manifest(self.root, rows, meta)  # an edited manifest must not make it read elsewhere
        if kept_only:
            rows = rows[rows["kept"]]
        self.rows = rows.reset_index(drop=True)
        self.classes: list[str] = list(meta["class_names"])
        self.mode = "L" if meta["image"]["channels"] == 1 else "RGB"
        self.transform = transform
        self.provenance = (*IDENTITY, *provenance_names(), "weight")
        self.weights = torch.as_tensor(self._weights(), dtype=torch.double)
        # 1 per real row, 0 per synthetic one: the plain first phase of deferred re-weighting
        self.real_weights = torch.as_tensor(~self.rows["is_synthetic"].to_numpy(bool), dtype=torch.double)

    def phase_samplers(self, num_samples: int, deferred: float = 0.0, generator: torch.Generator | None = None
                       ) -> list[tuple[str, torch.utils.data.WeightedRandomSampler]]:
        """The samplers to train with, phase by phase, `num_samples` draws in all: ('weighted', by `weights`)
        alone, or with `deferred` = d > 0 first ('real', the real rows uniformly) for d of the draws
        (deferred re-weighting). `for phase, sampler in ds.phase_samplers(n): loader = DataLoader(ds,
        batch_size=64, sampler=sampler); ...`"""
        if not 0.0 <= deferred < 1.0:
            raise ValueError(f"deferred must be a share of the draws in [0, 1), not {deferred!r}")
        first = round(deferred * num_samples)
        phases = [("real", self.real_weights, first)] if first else []
        phases.append(("weighted", self.weights, num_samples - first))
        return [(name, torch.utils.data.WeightedRandomSampler(w, n, replacement=True, generator=generator))
                for name, w, n in phases]

    def _weights(self) -> np.ndarray:
        labels = self.rows["label"].to_numpy()
        if "weight" in self.rows and self.rows["weight"].sum() > 0:
            return self.rows["weight"].to_numpy(float)
        counts = np.bincount(labels, minlength=len(self.classes)).astype(float)
        return 1.0 / counts[labels]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[Any, int, dict]:
        row = self.rows.iloc[i]
        with Image.open(self.root / row["path"]) as im:
            image = im.convert(self.mode)
        if self.transform is not None:
            image = self.transform(image)
        return image, int(row["label"]), {k: _plain(row[k]) for k in self.provenance if k in row}


def _plain(value: Any) -> Any:
    """Manifest values as types the default collate handles: missing integers -1, missing text ''."""
    if value is pd.NA or value is None:
        return -1
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    return str(value)
