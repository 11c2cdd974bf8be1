"""`GANOverSampler`: augment as an imbalanced-learn over-sampler over in-memory arrays.

    from imblearn.pipeline import make_pipeline
    pipe = make_pipeline(GANOverSampler(image_shape=(8, 8)), LogisticRegression())
    pipe.fit(X, y)   # X: (N, 64) digits pixels; the sampler adds synthetic rows while fitting only

It is an `imblearn.over_sampling.base.BaseOverSampler`: imbalanced-learn validates `sampling_strategy`
and computes `sampling_strategy_` (synthetic rows per class), and `fit_resample` returns the original
rows followed by the kept synthetic ones, so the counts meet the strategy (the whole plan:
`balance.synthetic_share = "full"` unless `config` says otherwise). The trained generator is kept
(`generator_`): `sample(counts)` draws more without training again, and `save`/`load` store it safely.

X is (N, H, W), (N, H, W, C), or flattened (N, H*W*C) with `image_shape`; uint8, or numbers from 0 to
`max_value` (default: 255 for uint8, else the largest value in X). Results keep X's layout, dtype and scale.
"""

from __future__ import annotations

import tempfile
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import torch
from imblearn.over_sampling.base import BaseOverSampler
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_array

from augment.checkpoint import load_checkpoint
from augment.config import build_config
from augment.data.labeled import LabeledImages
from augment.errors import ConfigError, OutputError
from augment.generate import gan_from_state, generate
from augment.layout import RunLayout
from augment.pipeline import run_stages
from augment.stages import stage_load
from augment.work_files import kept_candidates


class GANOverSampler(BaseOverSampler):
    """Over-sample classes with a conditional GAN, in imbalanced-learn's vocabulary.

    sampling_strategy: as imbalanced-learn ('auto', 'minority', 'not minority', 'not majority', 'all', a
        {label: count} dict, a float for two classes, or a callable of y).
    image_shape: (H, W) or (H, W, C) of flattened rows.
    config: any other augment settings as a nested dict, e.g. {"train": {"steps": 2000}}.
    """

    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "image_shape": [tuple, None],
        "config": [dict, None],
        "max_value": [Interval(Real, 0, None, closed="neither"), None],
        "random_state": [Interval(Integral, 0, 2**31 - 1, closed="both")],
    }

    def __init__(self, sampling_strategy: Any = "auto", image_shape: tuple[int, ...] | None = None,
                 config: dict | None = None, max_value: float | None = None, random_state: int = 0):
        super().__init__(sampling_strategy=sampling_strategy)
        self.image_shape = image_shape
        self.config = config
        self.max_value = max_value
        self.random_state = random_state

    def _check_X_y(self, X, y, accept_sparse=None):
        """Image arrays may have 3 or 4 dimensions; they stay numeric and dense."""
        X, y, binarize_y = super()._check_X_y(np.asarray(X).reshape(len(X), -1), y, accept_sparse=False)
        return X, y, binarize_y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False  # images are dense arrays
        return tags

    def fit_resample(self, X, y, **params):
        if hasattr(X, "tocsr") or hasattr(X, "sparse"):
            raise ConfigError("GANOverSampler takes dense image arrays, not a sparse matrix; use X.toarray().")
        X = np.asarray(X)
        self._input_ndim, self._input_shape, self._input_dtype = X.ndim, X.shape[1:], X.dtype
        X_res, y_res = super().fit_resample(X, y, **params)
        return self._in_input_layout(X_res), y_res

    def _fit_resample(self, X, y):
        images, self.scale_ = self._to_images(X)
        self.classes_ = np.unique(y)
        labels = np.searchsorted(self.classes_, y).astype(np.int64)
        counts = np.bincount(labels, minlength=len(self.classes_))
        wanted = {str(c): int(counts[i] + self.sampling_strategy_.get(c, 0)) for i, c in enumerate(self.classes_)}
        base = {k: dict(v) if isinstance(v, dict) else v for k, v in (self.config or {}).items()}
        base.setdefault("balance", {}).update(sampling_strategy=wanted)
        base["balance"].setdefault("synthetic_share", "full")  # a resampler returns the counts asked for
        base.setdefault("image", {}).update(size=images.shape[2], channels=images.shape[1])
        base["seed"] = int(self.random_state)
        cfg = build_config(base=base)
        data = LabeledImages(torch.from_numpy(images), torch.from_numpy(labels), [str(c) for c in self.classes_],
                             [f"x-{i:06d}" for i in range(len(y))], "GANOverSampler")
        with tempfile.TemporaryDirectory() as tmp:
            layout = RunLayout.for_output(Path(tmp) / "out")
            stage_load(data, cfg, layout)
            run_stages(cfg, layout, export=False)
            kept = kept_candidates(layout)
            best = _best_checkpoint(layout)
            self.generator_ = load_checkpoint(layout.train_dir / best) if best else None
        syn_x, syn_y = (kept[0].numpy(), kept[1].numpy()) if kept is not None else \
            (np.zeros((0, *images.shape[1:]), np.uint8), np.zeros(0, np.int64))
        self.n_synthetic_ = {c: int((syn_y == i).sum()) for i, c in enumerate(self.classes_)}
        return np.concatenate([X, self._rows(syn_x)]), np.concatenate([y, self.classes_[syn_y]])

    def sample(self, counts: dict, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """More synthetic rows from the fitted generator, without training again: {label: n}. These are
        raw draws (not scored or selected, unlike those fit_resample returns), in X's layout and scale."""
        if not hasattr(self, "generator_"):
            raise ConfigError("GANOverSampler.sample needs a fitted sampler: call fit_resample (or load) first.")
        if self.generator_ is None:
            raise ConfigError("GANOverSampler.sample needs one conditional generator; model.variant = 'dcgan' "
                              "trains one per class. Use 'acgan', 'cgan' or 'gan-cls'.")
        gan = gan_from_state(self.generator_)
        index = {c: i for i, c in enumerate(self.classes_)}
        unknown = [c for c in counts if c not in index]
        if unknown:
            raise ConfigError(f"GANOverSampler.sample got labels {unknown}; the sampler knows {list(self.classes_)}.")
        start = {index[c]: 10**6 for c in counts}  # latent indices after any fit_resample drew
        syn = generate(gan, {index[c]: int(n) for c, n in counts.items()}, self.random_state if seed is None else seed,
                       start, 0)
        return self._in_input_layout(self._rows(syn.images.numpy())), self.classes_[syn.labels.numpy()]

    def save(self, path: str | Path) -> None:
        """The fitted generator and what `sample` needs, as plain tensors and values (no pickled objects);
        a place that cannot be written is refused as a run's --out is (`check_place`), nothing written."""
        from augment.atomic import write_atomic
        from augment.errors import as_output_error
        from augment.run_checks import check_place

        state = {"generator": self.generator_, "classes": self.classes_.tolist(), "scale": float(self.scale_),
                 "input_ndim": self._input_ndim, "input_shape": list(self._input_shape),
                 "params": {k: v for k, v in self.get_params().items() if k != "config"},
                 "input_dtype": str(self._input_dtype)}
        check_place(None, Path(path), flag="path")
        if Path(path).is_dir():
            raise OutputError(f"path '{path}' is a folder; GANOverSampler.save writes one file. Name a file in it.")
        try:
            write_atomic(path, lambda fh: torch.save(state, fh))
        except OSError as exc:
            raise as_output_error(exc, Path(path)) from exc

    @classmethod
    def load(cls, path: str | Path) -> GANOverSampler:
        """A sampler saved by `save`, loaded with torch.load(weights_only=True)."""
        state = load_checkpoint(Path(path))
        params = state["params"]
        if isinstance(params.get("image_shape"), list):
            params["image_shape"] = tuple(params["image_shape"])
        sampler = cls(**params)
        sampler.generator_, sampler.classes_ = state["generator"], np.asarray(state["classes"])
        sampler.scale_, sampler._input_ndim = state["scale"], state["input_ndim"]
        sampler._input_shape, sampler._input_dtype = tuple(state["input_shape"]), np.dtype(state["input_dtype"])
        return sampler

    def _to_images(self, X: np.ndarray) -> tuple[np.ndarray, float]:
        X = np.asarray(X).reshape(len(X), *self._input_shape) if self._input_ndim > 2 else np.asarray(X)
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
        X = check_array(X.reshape(len(X), -1), dtype=None).reshape(X.shape)
        scale = float(self.max_value if self.max_value is not None else (255 if X.dtype == np.uint8 else X.max()))
        if scale <= 0:
            raise ConfigError("X has no positive values to scale; pass max_value.")
        x8 = np.clip(np.rint(X.astype(np.float64) * (255.0 / scale)), 0, 255).astype(np.uint8)
        x8 = x8[:, None] if x8.ndim == 3 else x8.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x8), scale

    def _rows(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, C, H, W) as flattened rows in X's pixel order, scale and dtype."""
        channels_last = images.transpose(0, 2, 3, 1)  # (N, H, W, C): X's order, gray or colour
        x = channels_last.reshape(len(images), -1).astype(np.float64) * (self.scale_ / 255.0)
        return np.rint(x).astype(self._input_dtype) if np.issubdtype(self._input_dtype, np.integer) else \
            x.astype(self._input_dtype)

    def _in_input_layout(self, rows: np.ndarray) -> np.ndarray:
        return rows.reshape(len(rows), *self._input_shape) if self._input_ndim > 2 else rows


def _best_checkpoint(layout: RunLayout) -> str | None:
    """The conditional GAN's best checkpoint (None for dcgan, which trains one GAN per class)."""
    from augment.atomic import read_json

    return read_json(layout.train_result)["runs"].get("all", {}).get("best_checkpoint")
