"""Downstream check: does a classifier trained on the augmented data do better than the classical fixes?"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

from augment.score.probe import fit_pixel_logreg


def downstream_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int, tail: int = 3) -> dict[str, float]:
    """Balanced accuracy, macro-F1 and tail recall (mean recall of the last `tail` classes)."""
    recalls = recall_score(y_true, y_pred, labels=list(range(num_classes)), average=None, zero_division=0)
    return {"balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
            "tail_recall": float(np.mean(recalls[-tail:]))}


def random_oversample(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from imblearn.over_sampling import RandomOverSampler

    return RandomOverSampler(random_state=seed).fit_resample(x, y)


def logreg_arms(x_train: np.ndarray, y_train: np.ndarray, x_syn: np.ndarray, y_syn: np.ndarray,
                x_test: np.ndarray, y_test: np.ndarray, num_classes: int, seed: int = 0) -> pd.DataFrame:
    """Logistic regression on pixels (inputs flattened, in [0, 1]) for the imbalanced, random-oversampling,
    class-weighted and augmented (real + kept synthetic) arms."""
    arms = {
        "imbalanced": (x_train, y_train, False),
        "random oversampling": (*random_oversample(x_train, y_train, seed), False),
        "class-weighted": (x_train, y_train, True),
        "augmented (real + synthetic)": (np.concatenate([x_train, x_syn]), np.concatenate([y_train, y_syn]), False),
    }
    rows = []
    for arm, (x, y, weighted) in arms.items():
        clf = fit_pixel_logreg(x, y, seed, balanced=weighted)
        rows.append({"arm": arm, "train_images": len(y), **downstream_metrics(y_test, clf.predict(x_test), num_classes)})
    return pd.DataFrame(rows)
