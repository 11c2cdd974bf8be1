"""A quick, GAN-independent judge of generated images: logistic regression on real pixels.

Used during training to pick the best checkpoint (GANs often get worse late in training),
and by the demo for its downstream check. Its score rewards both class fidelity
(the probe reads the intended class) and diversity (samples of a class are as spread out
as the real ones), so a collapsed generator cannot score well.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from augment.data.labeled import LabeledImages


def pixels(images: torch.Tensor) -> np.ndarray:
    """uint8 (N, C, H, W) -> float32 (N, C*H*W) in [0, 1]."""
    return images.flatten(1).numpy().astype(np.float32) / 255.0


def fit_pixel_logreg(x: np.ndarray, y: np.ndarray, seed: int = 0, balanced: bool = True,
                     sample_weight: np.ndarray | None = None) -> LogisticRegression:
    """Logistic regression on pixels with a fixed budget of 300 lbfgs iterations: a judge that stops where the
    budget ends rather than at convergence, so scikit-learn's convergence warning says nothing to a user."""
    clf = LogisticRegression(max_iter=300, C=1.0, class_weight="balanced" if balanced else None, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clf.fit(x, y, sample_weight=sample_weight)


def mean_pairwise_distance(x: np.ndarray, max_n: int = 200) -> float:
    x = x[:max_n].astype(np.float64)
    if len(x) < 2:
        return 0.0
    sq = (x * x).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0)
    n = len(x)
    return float(np.sqrt(d2).sum() / (n * (n - 1)))


class PixelProbe:
    """Fit once on the real training images; call with generated images of known intended class."""

    def __init__(self, real: LabeledImages, seed: int = 0, max_per_class: int = 1000):
        rng = np.random.default_rng(seed)
        y = real.labels.numpy()
        keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[:max_per_class]
                                       for c in range(real.num_classes)]))
        x = pixels(real.images[keep])
        self.num_classes = real.num_classes
        # one class: nothing to tell apart, so fidelity is trivially 1 and only diversity counts
        self.clf = fit_pixel_logreg(x, y[keep], seed) if real.num_classes > 1 else None
        self.real_spread = np.array([mean_pairwise_distance(x[y[keep] == c]) for c in range(real.num_classes)])

    def predict_proba(self, images: torch.Tensor) -> np.ndarray:
        """(N, K) probabilities; columns follow class indices even if a class was absent when fitting."""
        if self.clf is None:
            return np.ones((len(images), 1))
        p = self.clf.predict_proba(pixels(images))
        out = np.zeros((len(p), self.num_classes), dtype=np.float64)
        out[:, self.clf.classes_] = p
        return out

    def judge(self, images: torch.Tensor, labels: torch.Tensor) -> dict:
        """{'score', 'accuracy', 'diversity'}: means over the classes present of fidelity (the probe reads
        the intended class) and of spread relative to the real images of that class (capped at 1)."""
        y = labels.numpy()
        pred = self.predict_proba(images).argmax(1)
        x = pixels(images)
        present = [c for c in range(self.num_classes) if (y == c).any()]
        acc = np.array([(pred[y == c] == c).mean() for c in present])
        spread = np.array([mean_pairwise_distance(x[y == c]) for c in present])
        div = np.minimum(1.0, spread / np.maximum(self.real_spread[present], 1e-8))
        return {"score": float((acc * div).mean()), "accuracy": float(acc.mean()), "diversity": float(div.mean())}

    def quality_fn(self, n_per_class: int = 64, label_map: list[int] | None = None):
        """The `quality` callback `augment.train.train` expects. `label_map[i]` is the dataset class of
        the model's class i (a per-class model's only class 0 is some class c of the dataset)."""
        def check(sample):
            images, labels = sample(n_per_class)
            if label_map is not None:
                labels = torch.as_tensor(label_map)[labels]
            return self.judge(images, labels)
        return check
