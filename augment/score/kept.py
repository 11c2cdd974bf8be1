"""Quality of the kept synthetic images, for dataset.json, quality.csv and the report: the registered
metrics per class and overall in the external classifier's feature space, the judge's accuracy on all
candidates, a fresh real-vs-synthetic detector's accuracy and the classification accuracy score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.device import resolve_device
from augment.generate import Synthetic
from augment.layout import RunLayout
from augment.score.candidates import external_key
from augment.score.detector import detector_accuracy
from augment.score.external import classification_accuracy_score
from augment.score.metrics import MetricInputs, quality_table


def kept_quality(cfg: Config, layout: RunLayout, data: LabeledImages, cand: Synthetic, scores: pd.DataFrame,
                 copy_threshold: float | None) -> pd.DataFrame | None:
    """Metrics of the kept synthetic images per class and overall, plus the classification accuracy score
    (the external recipe trained on kept synthetic images only, tested on held-out real ones); None when
    nothing was kept."""
    if not len(cand) or not layout.candidate_scores.exists():
        return None
    kept = scores["kept"].to_numpy(bool).copy()
    if not kept.any():
        return None
    with np.load(layout.candidate_scores) as z:
        feats = z["feats"]
    real_feats = np.load(layout.real_features(external_key(cfg)))
    inputs = MetricInputs(real_feats, feats[kept], cand.labels.numpy()[kept], scores["ext_pred"].to_numpy()[kept],
                          data.num_classes, copy_threshold, scores["nn_distance"].to_numpy()[kept])
    table = quality_table(real_feats, data.labels.numpy(), inputs, data.class_names, seed=cfg.seed)
    # Kept images agree with the external classifier by construction when select.require_agreement
    # is on; how often it reads *all* candidates as their class says how good the generator is.
    labels, preds = cand.labels.numpy(), scores["ext_pred"].to_numpy()
    per_class = {data.class_names[c]: float((preds[labels == c] == c).mean()) for c in np.unique(labels)}
    per_class["all"] = float((preds == labels).mean())
    table.insert(table.columns.get_loc("ext_accuracy") + 1, "ext_accuracy_all_candidates",
                 [per_class[name] for name in table["class"]])
    keep = torch.from_numpy(kept)
    if cfg.score.detector:
        found = detector_accuracy(data.images, data.labels.numpy(), cand.images[keep], labels[kept],
                                  data.class_names, seed=cfg.seed, device=resolve_device(cfg.train.device))
        table["detector"] = [found.get(name, float("nan")) for name in table["class"]]
    if cfg.score.cas:
        cas = classification_accuracy_score(cand.images[keep], cand.labels[keep], data, cfg)
        table["cas"] = [cas.get(name, float("nan")) for name in table["class"]]
    return table
