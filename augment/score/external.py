"""The external classifier: trained on the real training images only, independent of the GAN, it
judges every synthetic image (ext_prob, ext_pred) and gives the feature space for nn_distance and
the quality metrics.

score.external = 'cnn' (the fixed SmallCNN recipe), 'logreg' (scikit-learn on pixels; features are
the pixels), or 'torchscript:PATH' (a user's model: float input in [0, 1] of shape (N, C, H, W),
logits out; a `features` method, if exported, gives the feature space). A TorchScript file is loaded
with torch.jit.load, which runs no pickled Python code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, recall_score
from sklearn.model_selection import train_test_split

from augment import checkpoint as ckpt
from augment.data.labeled import LabeledImages
from augment.device import resolve_device
from augment.errors import ConfigError
from augment.score import cnn
from augment.score.probe import fit_pixel_logreg, pixels


@dataclass
class ExternalReport:
    """How well the external classifier reads held-out real images; `weak` when too weak to judge."""

    kind: str
    holdout_accuracy: float
    holdout_balanced_accuracy: float
    n_train: int
    n_holdout: int
    floor: float
    weak: bool

    def to_dict(self) -> dict:
        return asdict(self)


class ExternalClassifier:
    """predict(images uint8) -> (probabilities (N, K), features (N, F))."""

    def __init__(self, kind: str, model, num_classes: int, device: torch.device | str = "cpu"):
        self.kind, self.model, self.num_classes, self.device = kind, model, num_classes, device

    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        if self.kind == "single-class":
            return np.ones((len(images), 1)), pixels(images).astype(np.float64)
        if self.kind == "logreg":
            x = pixels(images)
            p = np.zeros((len(x), self.num_classes))
            if len(x):
                p[:, self.model.classes_] = self.model.predict_proba(x)
            return p, x.astype(np.float64)
        return cnn.predict(self.model, images, self.device)


def balanced_accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall over the classes present in `truth` (predictions of other classes count as misses)."""
    present = np.unique(truth)
    return float(np.mean(recall_score(truth, pred, labels=present, average=None, zero_division=0)))


def holdout_split(labels: np.ndarray, seed: int, fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, holdout) indices; every class keeps at least one training image."""
    idx = np.arange(len(labels))
    counts = np.bincount(labels)
    if len(labels) * fraction < len(counts) or counts.min() < 2:
        # too small to stratify: hold out one image of each class with >= 3, none of the others
        rng = np.random.default_rng(seed)
        hold = [rng.choice(np.flatnonzero(labels == c)) for c in range(len(counts)) if counts[c] >= 3]
        hold = np.array(sorted(hold), dtype=int)
        return np.setdiff1d(idx, hold), hold
    tr, ho = train_test_split(idx, test_size=fraction, stratify=labels, random_state=seed)
    return np.sort(tr), np.sort(ho)


def fit_external(data: LabeledImages, kind: str, *, seed: int = 0, device: torch.device | str = "cpu",
                 steps: int = 1000, floor: float = 0.5,
                 cache: Path | None = None) -> tuple[ExternalClassifier, ExternalReport]:
    """Fit (or load) the external classifier on a stratified 80% of the real images; score it on the rest."""
    y = data.labels.numpy()
    tr, ho = holdout_split(y, seed)
    if data.num_classes < 2:  # nothing to tell apart: every image is its class; features are the pixels
        return (ExternalClassifier("single-class", None, 1),
                ExternalReport("single-class (pixels)", 1.0, 1.0, len(y), 0, floor, False))
    if kind.startswith("torchscript:"):
        clf = _load_torchscript(Path(kind.split(":", 1)[1]), data, device)
    elif kind == "logreg":
        clf = ExternalClassifier("logreg", fit_pixel_logreg(pixels(data.images[tr]), y[tr], seed), data.num_classes)
    elif kind == "cnn":
        model = cnn.SmallCNN(data.channels, data.num_classes)
        recipe = {"steps": steps, "seed": seed, "fingerprint": data.fingerprint}
        cached = ckpt.load_checkpoint(cache) if cache is not None and cache.exists() else None
        if cached is not None and cached.get("recipe") == recipe:
            model.load_state_dict(cached["state"])
            model = model.to(device).eval()
        else:  # none yet, or fitted with other steps, seed or data: fit again
            model = cnn.train_cnn(data.images[tr], data.labels[tr], data.num_classes, steps=steps, seed=seed,
                                  device=device)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                ckpt.save_checkpoint({"format": 1, "state": model.state_dict(), "recipe": recipe}, cache)
        clf = ExternalClassifier("cnn", model, data.num_classes, device)
    else:
        raise ConfigError(f"The 'score.external' setting must be 'cnn', 'logreg' or 'torchscript:PATH'. "
                          f"Got {kind!r} instead.")
    if len(ho):
        pred = clf.predict(data.images[torch.from_numpy(ho)])[0].argmax(1)
        acc, bacc = float(accuracy_score(y[ho], pred)), balanced_accuracy(y[ho], pred)
    else:
        acc = bacc = float("nan")
    report = ExternalReport(kind, acc, bacc, len(tr), len(ho), floor, not (bacc >= floor))
    return clf, report


def _load_torchscript(path: Path, data: LabeledImages, device) -> ExternalClassifier:
    if not path.is_file():
        raise ConfigError(f"score.external names '{path}', which does not exist.")
    try:
        model = torch.jit.load(str(path), map_location=device).eval()
    except Exception as exc:  # not a TorchScript archive
        raise ConfigError(f"score.external: '{path}' is not a TorchScript model ({exc}). Save yours with "
                          "torch.jit.save(torch.jit.script(model), path).") from None
    with torch.inference_mode():
        out = model(data.images[:2].to(device).float() / 255.0)
    if out.ndim != 2 or out.shape[1] != data.num_classes:
        raise ConfigError(f"score.external: '{path}' returns shape {tuple(out.shape)} for 2 images; it must "
                          f"return logits of shape (N, {data.num_classes}), one column per class in class order.")
    return ExternalClassifier("torchscript", model, data.num_classes, device)


def classification_accuracy_score(images: torch.Tensor, labels: torch.Tensor, real: LabeledImages, cfg) -> dict:
    """CAS (Ravuri & Vinyals 2019): the external recipe trained on synthetic images only, tested on the
    held-out real images; per-class recall by class name, balanced accuracy under 'all'."""
    from sklearn.metrics import recall_score

    y_real = real.labels.numpy()
    _, ho = holdout_split(y_real, cfg.seed)
    present = sorted(set(labels.tolist()))
    if not len(ho) or len(present) < 2:  # a classifier of one class measures nothing
        return {}
    if cfg.score.external == "logreg":
        clf = fit_pixel_logreg(pixels(images), labels.numpy(), cfg.seed)
        pred = clf.predict(pixels(real.images[torch.from_numpy(ho)]))
    else:  # 'cnn', and the recipe stands in for a user's TorchScript model, which cannot be retrained
        model = cnn.train_cnn(images, labels, real.num_classes, steps=cfg.score.external_steps, seed=cfg.seed,
                              device=resolve_device(cfg.train.device))
        pred = cnn.predict(model, real.images[torch.from_numpy(ho)], next(model.parameters()).device)[0].argmax(1)
    truth = y_real[ho]
    present = [c for c in present if (truth == c).any()]  # scored: classes with synthetic and held-out images
    keep = np.isin(truth, present)
    if not present:
        return {}
    recalls = recall_score(truth[keep], pred[keep], labels=present, average=None, zero_division=0)
    out = {real.class_names[c]: float(r) for c, r in zip(present, recalls)}
    out["all"] = float(np.mean(recalls))
    return out
