"""Manifold membership: is a candidate inside its class's real images' k-NN balls in a feature space?

The precision metric (Kynkaanniemi et al. 2019) counts a generated sample as realistic when it lies within
the k-th nearest-neighbour radius of at least one real sample. Used as a gate, it rejects images a
classifier reads as their class but that look like no real image of it (a class whose kept images have
precision 0.01 while the external classifier agrees with every one).
"""

from __future__ import annotations

import numpy as np

from augment.score.metrics import pairwise_distances


def inside_class_manifold(feats: np.ndarray, labels: np.ndarray, real_feats: np.ndarray,
                          real_labels: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """True per candidate that lies within the k-NN radius of some real image of its own class.

    A class with fewer than two real images has no radius: its candidates pass (the gate cannot judge
    them, and other checks still apply). k is capped at the class's real count minus one."""
    inside = np.ones(len(labels), dtype=bool)
    for c in np.unique(labels):
        real = real_feats[real_labels == c]
        if len(real) < 2:
            continue
        kk = min(k, len(real) - 1)
        radius = np.concatenate([np.partition(pairwise_distances(real[s:s + chunk], real), kk, axis=1)[:, kk]
                                 for s in range(0, len(real), chunk)])  # distance 0 to itself is the 0th
        idx = np.flatnonzero(labels == c)
        for s in range(0, len(idx), chunk):
            part = idx[s:s + chunk]
            inside[part] = (pairwise_distances(feats[part], real) <= radius[None, :]).any(axis=1)
    return inside


def pass_counts(inside: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict[str, dict[str, int]]:
    """Per class with candidates: how many were scored and how many lay inside the manifold."""
    return {class_names[c]: {"scored": int((labels == c).sum()), "inside": int(inside[labels == c].sum())}
            for c in np.unique(labels)}
