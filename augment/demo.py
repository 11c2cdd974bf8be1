"""The demo's downstream check: logistic regression on imbalanced vs. oversampled vs. augmented digits."""

from __future__ import annotations

import pandas as pd

from augment.data.labeled import LabeledImages
from augment.downstream import logreg_arms
from augment.layout import RunLayout
from augment.score.probe import pixels
from augment.work_files import kept_candidates


def downstream_section(layout: RunLayout, test: LabeledImages,
                       seed: int) -> tuple[pd.DataFrame, tuple[str, pd.DataFrame]]:
    """Compare arms on the held-out split using the run's work files (before they are exported)."""
    real = LabeledImages.load(layout.dataset)
    kept = kept_candidates(layout)
    if kept is not None:
        x_syn, y_syn = pixels(kept[0]), kept[1].numpy()
    else:
        x_syn, y_syn = pixels(real.images[:0]), real.labels.numpy()[:0]
    df = logreg_arms(pixels(real.images), real.labels.numpy(), x_syn, y_syn, pixels(test.images),
                     test.labels.numpy(), real.num_classes, seed)
    return df, ("Downstream check (logistic regression on pixels, held-out test split)", df)
