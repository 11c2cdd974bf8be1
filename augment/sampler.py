"""`GANOverSampler`: the pipeline as an imbalanced-learn over-sampler over in-memory arrays.

    from imblearn.pipeline import make_pipeline
    pipe = make_pipeline(GANOverSampler(image_shape=(8, 8)), LogisticRegression())
    pipe.fit(X, y)   # X: (N, 64) digits pixels; the sampler adds synthetic rows while fitting only

X is (N, H, W), (N, H, W, C), or flattened (N, H*W*C) with `image_shape`; uint8, or numbers from 0 to
`max_value` (default: 255 for uint8, else the largest value in X). The result keeps X's layout,
dtype and scale: the original rows first, then the kept synthetic ones.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from augment.config import build_config
from augment.data.labeled import LabeledImages
from augment.errors import ConfigError
from augment.layout import RunLayout
from augment.pipeline import run_stages
from augment.stages import stage_load
from augment.stages.amount import kept_candidates


class GANOverSampler(BaseEstimator):
    """Over-sample minority classes with a conditional GAN, in imbalanced-learn's vocabulary.

    sampling_strategy: as imbalanced-learn ('auto', 'minority', a {label: count} dict, a callable of y)
        or augment's 'target:N' / 'ratio:R'.
    config: any other settings as a nested dict, e.g. {"train": {"steps": 2000}}.
    """

    def __init__(self, sampling_strategy: Any = "auto", image_shape: tuple[int, ...] | None = None,
                 config: dict | None = None, max_value: float | None = None, random_state: int = 0):
        self.sampling_strategy = sampling_strategy
        self.image_shape = image_shape
        self.config = config
        self.max_value = max_value
        self.random_state = random_state

    def fit(self, X, y):
        self.fit_resample(X, y)
        return self

    def fit_resample(self, X, y):
        X, y = np.asarray(X), np.asarray(y)
        images, scale = self._to_images(X)
        classes = np.unique(y)
        names = [str(c) for c in classes]
        labels = np.searchsorted(classes, y).astype(np.int64)
        strategy = self.sampling_strategy
        if callable(strategy):
            strategy = strategy(y)
        if isinstance(strategy, dict):
            strategy = {str(k): int(v) for k, v in strategy.items()}
        base = {k: dict(v) for k, v in (self.config or {}).items()}
        base.setdefault("balance", {})["sampling_strategy"] = strategy
        # a resampler returns the counts sampling_strategy asks for: the whole plan, unless told otherwise
        base["balance"].setdefault("synthetic_share", "full")
        base.setdefault("image", {}).update(size=images.shape[2], channels=images.shape[1])
        base["seed"] = int(self.random_state)
        cfg = build_config(base=base)
        data = LabeledImages(torch.from_numpy(images), torch.from_numpy(labels), names,
                             [f"x-{i:06d}" for i in range(len(y))], "GANOverSampler")
        with tempfile.TemporaryDirectory() as tmp:
            layout = RunLayout.for_output(Path(tmp) / "out")
            stage_load(data, cfg, layout)
            run_stages(cfg, layout, export=False)
            kept = kept_candidates(layout)
        syn_x, syn_y = (kept[0].numpy(), kept[1].numpy()) if kept is not None else \
            (np.zeros((0, *images.shape[1:]), np.uint8), np.zeros(0, np.int64))
        self.n_synthetic_ = {str(classes[c]): int((syn_y == c).sum()) for c in range(len(classes))}
        x_out = np.concatenate([X, self._from_images(syn_x, X, scale)])
        return x_out, np.concatenate([y, classes[syn_y]])

    def _to_images(self, X: np.ndarray) -> tuple[np.ndarray, float]:
        if X.ndim == 2:
            if self.image_shape is None:
                raise ConfigError("GANOverSampler got flattened X of shape "
                                  f"{X.shape}; pass image_shape=(H, W) or (H, W, C).")
            if int(np.prod(self.image_shape)) != X.shape[1]:
                raise ConfigError(f"image_shape {self.image_shape} has {int(np.prod(self.image_shape))} values per "
                                  f"image; X has {X.shape[1]}.")
            X = X.reshape(len(X), *self.image_shape)
        if X.ndim not in (3, 4):
            raise ConfigError(f"GANOverSampler takes X of shape (N, H, W), (N, H, W, C) or (N, D); got {X.shape}.")
        scale = float(self.max_value if self.max_value is not None else (255 if X.dtype == np.uint8 else X.max()))
        if scale <= 0:
            raise ConfigError("X has no positive values to scale; pass max_value.")
        x8 = np.clip(np.rint(X.astype(np.float64) * (255.0 / scale)), 0, 255).astype(np.uint8)
        x8 = x8[:, None] if x8.ndim == 3 else x8.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x8), scale

    def _from_images(self, images: np.ndarray, like: np.ndarray, scale: float) -> np.ndarray:
        gray_2d = like.ndim == 3 or (like.ndim == 2 and len(self.image_shape) == 2)
        x = images[:, 0] if images.shape[1] == 1 and gray_2d else images.transpose(0, 2, 3, 1)
        x = x.astype(np.float64) * (scale / 255.0)
        x = x.reshape(len(x), -1) if like.ndim == 2 else x
        return np.rint(x).astype(like.dtype) if np.issubdtype(like.dtype, np.integer) else x.astype(like.dtype)
