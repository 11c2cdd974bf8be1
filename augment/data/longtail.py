"""Long-tailed views of balanced datasets, as docs/benchmarks.md defines them."""

from __future__ import annotations

import numpy as np

# DeepSMOTE's MNIST-LT profile: class 0 is the head, class 9 the tail (imbalance ratio 100).
MNIST_LT_COUNTS = (4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40)


def exponential_counts(n_max: int, num_classes: int, ratio: float) -> list[int]:
    """n_c = n_max * ratio^(-c/(K-1)): class 0 keeps n_max, the last class n_max/ratio (at least 1)."""
    if num_classes == 1:
        return [n_max]
    return [max(1, int(n_max * ratio ** (-c / (num_classes - 1)))) for c in range(num_classes)]


def subsample_per_class(labels: np.ndarray, counts: list[int] | tuple[int, ...], seed: int) -> np.ndarray:
    """Indices keeping counts[c] samples of class c, drawn without replacement; sorted."""
    rng = np.random.default_rng(seed)
    keep = []
    for c, n in enumerate(counts):
        idx = np.flatnonzero(labels == c)
        if n > len(idx):
            raise ValueError(f"class {c} has {len(idx)} samples, fewer than the {n} asked for")
        keep.append(rng.choice(idx, size=n, replace=False))
    return np.sort(np.concatenate(keep))
