"""Paired comparisons of two classifiers on the same test images: the difference in balanced accuracy
and its paired bootstrap interval, resampling seeds and, within each class, test images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Difference:
    """A difference in balanced accuracy (A - B) with its bootstrap interval; `noise` when it holds 0."""

    mean: float
    low: float
    high: float

    @property
    def noise(self) -> bool:
        return self.low <= 0.0 <= self.high

    def __str__(self) -> str:
        return f"{self.mean:+.4f} [{self.low:+.4f}, {self.high:+.4f}]" + (" (noise)" if self.noise else "")


def paired_bootstrap(correct_a: np.ndarray, correct_b: np.ndarray, labels: np.ndarray, n_boot: int = 2000,
                     seed: int = 0, level: float = 0.95) -> Difference:
    """correct_a, correct_b: (S, N) whether arm A and arm B got test image i right on seed s (the same
    seeds, so the arms are paired); labels: (N,) the test labels. See `paired_bootstrap_sets`."""
    a, b = np.atleast_2d(correct_a), np.atleast_2d(correct_b)
    return paired_bootstrap_sets([(a[s], b[s], labels) for s in range(len(a))], n_boot, seed, level)


def paired_bootstrap_sets(pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n_boot: int = 2000,
                          seed: int = 0, level: float = 0.95) -> Difference:
    """One (correct_a, correct_b, labels) triple per seed, each over that seed's test images (which may
    differ between seeds). Balanced accuracy is the mean over classes of per-class recall, averaged over
    seeds; each bootstrap draw resamples the seeds and, within each class of each drawn seed, the test
    images, the same draw for both arms."""
    rng = np.random.default_rng(seed)
    point, per_seed = [], []  # per seed: its difference, and n_boot resampled differences
    for a, b, labels in pairs:
        d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
        classes = [np.flatnonzero(labels == c) for c in np.unique(labels)]
        point.append(np.mean([d[idx].mean() for idx in classes]))
        per_seed.append(np.mean([d[idx][rng.integers(len(idx), size=(n_boot, len(idx)))].mean(axis=1)
                                 for idx in classes], axis=0))
    resampled = np.stack(per_seed)  # (seeds, n_boot)
    chosen = rng.integers(len(pairs), size=(n_boot, len(pairs)))
    draws = resampled[chosen, np.arange(n_boot)[:, None]].mean(axis=1)
    tail = (1.0 - level) / 2
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return Difference(float(np.mean(point)), float(low), float(high))
