"""Selection: keep candidates of each class that pass every score floor, up to the plan's count.

Among those that pass, candidates are taken in latent order (which is random), not best score
first: ranking by the auxiliary classifier's confidence favours prototypical images and measurably
narrows each class (pixel-space spread 0.80 -> 0.72 of the real spread on digits-LT) without
helping a downstream classifier."""

from __future__ import annotations

import numpy as np


def select(labels: np.ndarray, aux_prob: np.ndarray, need: dict[int, int], min_aux_prob: float,
           latent_index: np.ndarray | None = None) -> tuple[np.ndarray, dict[int, int]]:
    """(kept mask, shortfall per class). Per class: the first need[c] candidates, in latent order,
    whose aux_prob reaches the floor; so a rerun keeps the same rows."""
    kept = np.zeros(len(labels), dtype=bool)
    order_key = latent_index if latent_index is not None else np.arange(len(labels))
    shortfall: dict[int, int] = {}
    for c, n in need.items():
        cand = np.flatnonzero((labels == c) & (aux_prob >= min_aux_prob))
        cand = cand[np.argsort(order_key[cand], kind="stable")]
        take = cand[:n]
        kept[take] = True
        if len(take) < n:
            shortfall[c] = n - len(take)
    return kept, shortfall
