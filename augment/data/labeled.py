"""`LabeledImages`: the one in-memory form every reader produces and every stage consumes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augment.atomic import write_atomic


@dataclass
class LabeledImages:
    """uint8 images (N, C, H, W), int64 labels indexing `class_names`, and a stable id per sample.

    `notes` records every normalisation applied while loading (resizes, mode conversions,
    skipped files) so that dataset.json can say what was done to the user's data.
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    sample_ids: list[str]
    source: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise ValueError("labels must be int64 with one entry per image")
        if len(self.sample_ids) != len(self.labels):
            raise ValueError("sample_ids must have one entry per image")
        self._fingerprint: str | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def size(self) -> int:
        return int(self.images.shape[2])

    def counts(self) -> list[int]:
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()

    def counts_by_name(self) -> dict[str, int]:
        return dict(zip(self.class_names, self.counts()))

    @property
    def fingerprint(self) -> str:
        """sha256 of the pixels, labels and class names as loaded (after normalisation)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(json.dumps([list(self.images.shape), self.class_names]).encode())
            h.update(self.images.contiguous().numpy().tobytes())
            h.update(self.labels.numpy().astype("<i8").tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def subset(self, index: np.ndarray | torch.Tensor | list[int]) -> LabeledImages:
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return LabeledImages(self.images[idx].clone(), self.labels[idx].clone(), list(self.class_names),
                             [self.sample_ids[i] for i in idx.tolist()], self.source, dict(self.notes))

    def save(self, path: str | Path) -> None:
        """Write as .npz without pickled objects, so `load` needs no allow_pickle."""
        write_atomic(path, lambda fh: np.savez(
            fh, x=self.images.numpy(), y=self.labels.numpy(), class_names=np.array(self.class_names, dtype=str),
            sample_ids=np.array(self.sample_ids, dtype=str),
            meta=np.array(json.dumps({"source": self.source, "notes": self.notes}))))

    @classmethod
    def load(cls, path: str | Path) -> LabeledImages:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return cls(torch.from_numpy(z["x"].copy()), torch.from_numpy(z["y"].astype(np.int64)),
                       [str(s) for s in z["class_names"]], [str(s) for s in z["sample_ids"]],
                       meta["source"], meta["notes"])
