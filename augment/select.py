"""Selection: per class, keep the candidates that pass every check, up to the plan's count.

Checks, in order (a rejected row records the first it failed in `reject_reason`):
  aux_prob      the GAN's class head (or auxiliary classifier) gives the intended class < select.min_aux_prob
  ext_prob      the external classifier gives the intended class < select.min_ext_prob
  ext_disagrees the external classifier's top class is another one (select.require_agreement)
  off_manifold  outside every k-NN ball of its class's real images in the external classifier's feature
                space (select.manifold_k; the precision metric's test, used as a gate)
  near_copy     closer to a real training image than the copy threshold (select.reject_copies)
  duplicate     closer to an already kept synthetic image than the copy threshold (select.reject_duplicates)
  surplus       passed, but the class's quota was already met

Order among candidates that pass (select.rank):
  random       latent order (which is random), so a rerun keeps the same rows. Not best score first:
               ranking by the auxiliary classifier's confidence favours prototypical images and measurably
               narrowed each class (pixel-space spread 0.80 -> 0.72 of the real spread on digits-LT)
               without helping a downstream classifier.
  informative  the harder part first: candidates whose external loss (-log p of the intended class) is
               above the class's select.easy_quantile, in greedy farthest-point order in the external
               feature space (each next one the farthest from those before it), then the easier ones in
               the same order. A classifier learns least from the images it is surest of; valid but hard
               and spread-out samples are what M2m and feedback-guided synthesis add.
  coverage     greedy farthest-point order seeded by the class's real training images: each next candidate
               the one farthest from every real image of its class and every candidate taken before, so
               the first places go to the regions the real images leave empty (what "added coverage"
               measures; with select.manifold_k the gate keeps them near the real data).
Each kept image's position in its class's order is its `rank` (0 first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from augment.config import SelectConfig
from augment.score.metrics import nearest_distance, pairwise_distances


@dataclass
class Selection:
    kept: np.ndarray            # bool per candidate
    reason: np.ndarray          # str per candidate ('' where kept)
    shortfall: dict[int, int]   # class -> images missing from the plan
    rank: np.ndarray            # int per candidate: position among its class's kept images (-1 where not kept)


def is_last_round(shortfall: dict, round_index: int, cfg: SelectConfig) -> bool:
    """Whether no top-up round follows this one: nothing is short, or select.max_rounds are done."""
    return not shortfall or round_index + 1 >= cfg.max_rounds


def select(labels: np.ndarray, need: dict[int, int], cfg: SelectConfig, *, aux_prob: np.ndarray,
           ext_prob: np.ndarray | None = None, ext_pred: np.ndarray | None = None,
           nn_distance: np.ndarray | None = None, features: np.ndarray | None = None,
           copy_threshold: float = 0.0, latent_index: np.ndarray | None = None,
           on_manifold: np.ndarray | None = None, real_features: np.ndarray | None = None,
           real_labels: np.ndarray | None = None) -> Selection:
    n = len(labels)
    reason = np.full(n, "", dtype=object)

    def fail(mask: np.ndarray, why: str) -> None:
        reason[(reason == "") & mask] = why

    fail(aux_prob < cfg.min_aux_prob, "aux_prob")
    if ext_prob is not None:
        fail(ext_prob < cfg.min_ext_prob, "ext_prob")
    if ext_pred is not None and cfg.require_agreement:
        fail(ext_pred != labels, "ext_disagrees")
    if on_manifold is not None:
        fail(~on_manifold, "off_manifold")
    if nn_distance is not None and cfg.reject_copies:
        fail(nn_distance < copy_threshold, "near_copy")
    if cfg.rank == "informative" and (ext_prob is None or features is None):
        raise ValueError("select.rank = 'informative' needs the external classifier's probabilities and features")
    if cfg.rank == "coverage" and (features is None or real_features is None or real_labels is None):
        raise ValueError("select.rank = 'coverage' needs the candidates' and the real images' features and labels")
    order_key = latent_index if latent_index is not None else np.arange(n)
    kept = np.zeros(n, dtype=bool)
    rank = np.full(n, -1, dtype=np.int64)
    shortfall: dict[int, int] = {}
    for c, quota in need.items():
        cand = np.flatnonzero((labels == c) & (reason == ""))
        cand = cand[np.argsort(order_key[cand], kind="stable")]
        if cfg.rank == "informative":
            cand = informative_order(cand, ext_prob, features, cfg.easy_quantile, limit=quota)
        elif cfg.rank == "coverage":
            first = farthest_point_order(cand, features, quota, seeds=real_features[real_labels == c])
            cand = np.concatenate([first, cand[~np.isin(cand, first)]])
        if features is not None and cfg.reject_duplicates and copy_threshold > 0:
            take = _greedy_distinct(cand, features, copy_threshold, quota, reason)
        else:
            take = cand[:quota]
        kept[take] = True
        rank[take] = np.arange(len(take))
        fail((labels == c) & ~kept, "surplus")
        if len(take) < quota:
            shortfall[c] = quota - len(take)
    return Selection(kept, reason.astype(str), shortfall, rank)


def informative_order(cand: np.ndarray, ext_prob: np.ndarray, features: np.ndarray, easy_quantile: float,
                      limit: int | None = None) -> np.ndarray:
    """`cand` reordered: those harder than the easy_quantile of external loss first, each part in
    farthest-point order (see the module docstring). Only the first `limit` places are spread out (the
    cost grows with places x candidates); the rest follow, hardest first."""
    if len(cand) == 0:
        return cand
    loss = -np.log(np.clip(ext_prob[cand], 1e-12, 1.0))
    hard = loss > np.quantile(loss, easy_quantile) if easy_quantile > 0 else np.ones(len(cand), dtype=bool)
    limit = len(cand) if limit is None else limit
    first = farthest_point_order(cand[hard], features, limit)
    second = farthest_point_order(cand[~hard], features, max(limit - len(first), 0))
    order = np.concatenate([first, second])
    rest = cand[~np.isin(cand, order)]  # in their given order, then hardest first
    rest_loss = -np.log(np.clip(ext_prob[rest], 1e-12, 1.0))
    return np.concatenate([order, rest[np.argsort(-rest_loss, kind="stable")]])


def farthest_point_order(idx: np.ndarray, features: np.ndarray, limit: int, dims: int = 32,
                         seeds: np.ndarray | None = None) -> np.ndarray:
    """The first `limit` rows of `idx` in greedy k-center order: start at the one farthest from their mean
    (or, given `seeds`, from every seed point: rows of the same feature space already covered), then
    repeatedly the one farthest from every row already taken (ties to the earlier index). Features wider
    than `dims` go through one seeded random projection first (distances kept within a few percent)."""
    limit = min(limit, len(idx))
    if limit == 0:
        return idx[:0]
    x = np.asarray(features[idx], dtype=np.float32)
    project = x.shape[1] > dims
    if project:
        proj = np.random.default_rng(0).standard_normal((x.shape[1], dims)).astype(np.float32) / dims ** 0.5
        x = x @ proj
    x = np.ascontiguousarray(x)
    order = np.empty(limit, dtype=np.int64)
    if seeds is not None and len(seeds):
        s = np.asarray(seeds, dtype=np.float32) @ proj if project else np.asarray(seeds, dtype=np.float32)
        nearest = nearest_distance(x, s) ** 2
    else:
        nearest = ((x - x.mean(0)) ** 2).sum(1)
    for i in range(limit):
        j = int(np.argmax(nearest))
        order[i] = j
        np.minimum(nearest, ((x - x[j]) ** 2).sum(1), out=nearest)
        nearest[j] = -1.0  # taken
    return idx[order]


def _greedy_distinct(cand: np.ndarray, features: np.ndarray, threshold: float, quota: int,
                     reason: np.ndarray, block: int = 512) -> np.ndarray:
    """In order, keep a candidate unless it lies within `threshold` of one already kept; stop at quota."""
    kept: list[int] = []
    kept_feats = np.zeros((0, features.shape[1]))
    for start in range(0, len(cand), block):
        if len(kept) >= quota:
            break
        chunk = cand[start:start + block]
        ok = np.ones(len(chunk), dtype=bool)
        if len(kept_feats):
            ok &= pairwise_distances(features[chunk], kept_feats).min(axis=1) >= threshold
        inner = pairwise_distances(features[chunk], features[chunk])
        for i in range(len(chunk)):
            if not ok[i]:
                reason[chunk[i]] = "duplicate"
                continue
            if len(kept) >= quota:
                break
            kept.append(int(chunk[i]))
            ok[i + 1:] &= inner[i, i + 1:] >= threshold
        kept_feats = features[np.array(kept, dtype=int)]
    return np.array(kept, dtype=int)
