"""Quality metrics of synthetic images, computed offline in the external classifier's feature space
(no Inception weights exist here). Each metric is one registered function of `MetricInputs`;
`quality_table` evaluates all of them per class and overall.

- ext_accuracy: share of synthetic images the external classifier reads as their intended class
- frechet_distance: Fréchet distance between Gaussians fitted to real and synthetic features
- precision / recall: k-NN manifold precision and recall (Kynkäänniemi et al. 2019, k = 3)
- density / coverage: Naeem et al. 2020 (k = 5)
- memorisation: share of synthetic images closer to a real image than the copy threshold
- class_balance_kl: KL divergence between the external classifier's predicted class counts over the
  synthetic images and the uniform distribution (CBGAN's balance metric; overall only)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch


@dataclass
class MetricInputs:
    real: np.ndarray          # (N, F) real features
    fake: np.ndarray          # (M, F) synthetic features
    fake_labels: np.ndarray   # (M,) intended classes
    fake_pred: np.ndarray     # (M,) external classifier's predicted classes
    num_classes: int
    copy_threshold: float     # nn distance under which a synthetic image counts as a copy
    fake_nn: np.ndarray | None = None  # (M,) distance to the nearest real image of the whole set


Metric = Callable[[MetricInputs], dict[str, float]]
MAX_FEATURE_DIM = 1024  # wider features are projected before the metrics (MNIST pixels, 784, are not)
METRICS: dict[str, Metric] = {}
OVERALL_ONLY = {"class_balance_kl"}


def register_metric(name: str) -> Callable[[Metric], Metric]:
    def deco(fn: Metric) -> Metric:
        METRICS[name] = fn
        return fn
    return deco


def pairwise_distances(a: np.ndarray, b: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Euclidean distances (len(a), len(b)), in float64, computed in chunks."""
    ta, tb = torch.from_numpy(np.asarray(a, dtype=np.float64)), torch.from_numpy(np.asarray(b, dtype=np.float64))
    return torch.cat([torch.cdist(ta[i:i + chunk], tb) for i in range(0, len(ta), chunk)]).numpy() \
        if len(ta) else np.zeros((0, len(tb)))


def nearest_distance(a: np.ndarray, b: np.ndarray, exclude_self: bool = False, chunk: int = 2048) -> np.ndarray:
    """Distance from each row of a to its nearest row of b (to its nearest other row when a is b)."""
    ta, tb = torch.from_numpy(np.asarray(a, dtype=np.float64)), torch.from_numpy(np.asarray(b, dtype=np.float64))
    out = []
    for i in range(0, len(ta), chunk):
        d = torch.cdist(ta[i:i + chunk], tb)
        if exclude_self:
            rows = torch.arange(d.shape[0])
            d[rows, rows + i] = float("inf")
        out.append(d.min(dim=1).values)
    return torch.cat(out).numpy() if out else np.zeros(0)


def _kth_radius(x: np.ndarray, k: int) -> np.ndarray:
    d = pairwise_distances(x, x)
    return np.sort(d, axis=1)[:, min(k, len(x) - 1)]  # column 0 is the point itself


@register_metric("ext_accuracy")
def ext_accuracy(m: MetricInputs) -> dict[str, float]:
    if len(m.fake_labels) == 0:
        return {"ext_accuracy": float("nan")}
    return {"ext_accuracy": float((m.fake_pred == m.fake_labels).mean())}


@register_metric("frechet_distance")
def frechet_distance(m: MetricInputs, eps: float = 1e-6) -> dict[str, float]:
    from scipy import linalg

    if len(m.real) < 2 or len(m.fake) < 2:
        return {"frechet_distance": float("nan")}
    mu1, mu2 = m.real.mean(0), m.fake.mean(0)
    s1, s2 = np.cov(m.real, rowvar=False), np.cov(m.fake, rowvar=False)
    s1, s2 = np.atleast_2d(s1), np.atleast_2d(s2)
    offset = np.eye(s1.shape[0]) * eps  # keeps sqrtm stable when a class has fewer images than dimensions
    covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    fd = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    return {"frechet_distance": max(fd, 0.0)}


@register_metric("precision_recall")
def precision_recall(m: MetricInputs, k: int = 3) -> dict[str, float]:
    if len(m.real) <= k or len(m.fake) <= k:
        return {"precision": float("nan"), "recall": float("nan")}
    r_real, r_fake = _kth_radius(m.real, k), _kth_radius(m.fake, k)
    d = pairwise_distances(m.fake, m.real)  # (fake, real)
    precision = float((d <= r_real[None, :]).any(axis=1).mean())
    recall = float((d.T <= r_fake[None, :]).any(axis=1).mean())
    return {"precision": precision, "recall": recall}


@register_metric("spread")
def spread(m: MetricInputs, max_n: int = 500) -> dict[str, float]:
    """Mean pairwise distance among synthetic features over that among real ones (first max_n of each):
    1 is as spread out as the real images, lower is less diverse (collapse shows here first)."""
    if len(m.real) < 2 or len(m.fake) < 2:
        return {"spread": float("nan")}

    def mean_distance(x: np.ndarray) -> float:
        x = x[:max_n]
        return float(pairwise_distances(x, x).sum() / (len(x) * (len(x) - 1)))

    real = mean_distance(m.real)
    return {"spread": mean_distance(m.fake) / real if real > 0 else float("nan")}


@register_metric("density_coverage")
def density_coverage(m: MetricInputs, k: int = 5) -> dict[str, float]:
    if len(m.real) <= k or len(m.fake) == 0:
        return {"density": float("nan"), "coverage": float("nan")}
    r_real = _kth_radius(m.real, k)
    d = pairwise_distances(m.fake, m.real)
    inside = d <= r_real[None, :]
    density = float(inside.sum() / (k * len(m.fake)))
    coverage = float((d.min(axis=0) <= r_real).mean())
    return {"density": density, "coverage": coverage}


@register_metric("memorisation")
def memorisation(m: MetricInputs) -> dict[str, float]:
    if len(m.fake) == 0 or len(m.real) == 0:
        return {"memorisation": float("nan")}
    nn = m.fake_nn if m.fake_nn is not None else nearest_distance(m.fake, m.real)
    return {"memorisation": float((nn < m.copy_threshold).mean())}


@register_metric("class_balance_kl")
def class_balance_kl(m: MetricInputs) -> dict[str, float]:
    if len(m.fake_pred) == 0:
        return {"class_balance_kl": float("nan")}
    present = np.unique(m.fake_labels)
    p = np.bincount(m.fake_pred, minlength=m.num_classes)[present].astype(float)
    p = p / max(p.sum(), 1)
    q = 1.0 / len(present)
    nz = p > 0
    return {"class_balance_kl": float((p[nz] * np.log(p[nz] / q)).sum())}


def _take(a: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
    return None if a is None else a[idx]


def bounded_features(real: np.ndarray, fake: np.ndarray, seed: int = 0,
                     max_dim: int = MAX_FEATURE_DIM) -> tuple[np.ndarray, np.ndarray]:
    """Features wider than `max_dim` (pixels of 64 px RGB images are 12,288) through one seeded Gaussian
    random projection to `max_dim`, which keeps distances within a few percent (Johnson-Lindenstrauss),
    so that covariances, their square roots and k-NN distances stay small; narrower ones unchanged."""
    if real.shape[1] <= max_dim:
        return real, fake
    proj = np.random.default_rng(seed).standard_normal((real.shape[1], max_dim)) / np.sqrt(max_dim)
    return (real @ proj).astype(np.float32), (fake @ proj).astype(np.float32)


def quality_table(real_feats: np.ndarray, real_labels: np.ndarray, inputs: MetricInputs,
                  class_names: list[str], max_per_class: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per class that has synthetic images, plus 'all'; one column per metric value.
    Classes are subsampled to `max_per_class` on each side to bound the k-NN metrics' cost, and features
    wider than MAX_FEATURE_DIM are projected (`bounded_features`) to bound their memory."""
    rng = np.random.default_rng(seed)
    real_feats, fake_feats = bounded_features(real_feats, inputs.fake, seed)
    inputs = dataclasses.replace(inputs, real=real_feats, fake=fake_feats)

    def cap(idx: np.ndarray) -> np.ndarray:
        return np.sort(rng.permutation(idx)[:max_per_class]) if len(idx) > max_per_class else idx

    rows = []
    for c in np.unique(inputs.fake_labels):
        ri, fi = cap(np.flatnonzero(real_labels == c)), cap(np.flatnonzero(inputs.fake_labels == c))
        sub = MetricInputs(real_feats[ri], inputs.fake[fi], inputs.fake_labels[fi], inputs.fake_pred[fi],
                           inputs.num_classes, inputs.copy_threshold, _take(inputs.fake_nn, fi))
        row = {"class": class_names[c], "n_real": int((real_labels == c).sum()), "n_synthetic": int(len(fi))}
        for name, fn in METRICS.items():
            if name not in OVERALL_ONLY:
                row.update(fn(sub))
        rows.append(row)
    ri, fi = cap(np.arange(len(real_feats))), cap(np.arange(len(inputs.fake)))
    overall = MetricInputs(real_feats[ri], inputs.fake[fi], inputs.fake_labels[fi], inputs.fake_pred[fi],
                           inputs.num_classes, inputs.copy_threshold, _take(inputs.fake_nn, fi))
    row = {"class": "all", "n_real": int(len(real_feats)), "n_synthetic": int(len(inputs.fake))}
    for fn in METRICS.values():
        row.update(fn(overall))
    rows.append(row)
    return pd.DataFrame(rows)
