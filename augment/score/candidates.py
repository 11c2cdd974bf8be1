"""Scoring every candidate of a run, and the caches that make later rounds cheap: the external classifier
fitted once, the real images' features and nearest-neighbour distances computed once per external
classifier, and candidate scores kept across top-up rounds (only new candidates are scored)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from augment.atomic import read_json, write_atomic
from augment.checkpoint import file_sha256
from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.generate import Synthetic
from augment.layout import RunLayout
from augment.score.external import ExternalClassifier, ExternalReport, fit_external
from augment.score.gan_scores import gan_scores
from augment.score.metrics import nearest_distance
from augment.trained import TrainedModels


def external_key(cfg: Config) -> str:
    """What the external classifier's outputs depend on: its recipe (a file's content for TorchScript)."""
    external = cfg.score.external
    if external.startswith("torchscript:") and Path(external.split(":", 1)[1]).is_file():
        external += ":" + file_sha256(Path(external.split(":", 1)[1]))
    return json.dumps({"external": external, "external_steps": cfg.score.external_steps, "seed": cfg.seed},
                      sort_keys=True)


def _cached_array(path: Path, compute) -> np.ndarray:
    if path.exists():
        return np.load(path)
    value = compute()
    write_atomic(path, lambda fh: np.save(fh, value))
    return value


def external_judge(cfg: Config, layout: RunLayout, data: LabeledImages, device: torch.device
                   ) -> tuple[ExternalClassifier, ExternalReport, np.ndarray, np.ndarray]:
    """The external classifier (fitted once per run; the 'cnn' recipe is cached), its report, the real
    images' features and each real image's distance to its nearest other real image (both kept in the
    work folder: they are the same for every selection round)."""
    ext, report = fit_external(data, cfg.score.external, seed=cfg.seed, device=device,
                               steps=cfg.score.external_steps, floor=cfg.score.min_external_accuracy,
                               cache=layout.external)
    key = external_key(cfg)
    real_feats = _cached_array(layout.real_features(key), lambda: ext.predict(data.images)[1].astype(np.float32))
    real_nn = _cached_array(layout.real_nn_distance(key),
                            lambda: nearest_distance(real_feats, real_feats, exclude_self=True))
    return ext, report, real_feats, real_nn


def scorer_key(cfg: Config, layout: RunLayout) -> str:
    """What stored candidate scores depend on besides the candidates: the trained GANs and the external
    classifier (a changed score.external cannot reuse scores of another)."""
    return json.dumps({"training": read_json(layout.train_result)["key"], "external": external_key(cfg)},
                      sort_keys=True)


def load_candidate_scores(layout: RunLayout, key: str, cand: Synthetic) -> dict[str, np.ndarray]:
    """The stored scores of the first candidates, if the same scorers made them for the same candidates
    (class and latent index row by row); else none."""
    if not layout.candidate_scores.exists():
        return {}
    with np.load(layout.candidate_scores) as z:
        stored = {k: z[k] for k in z.files}
    n = len(stored["aux_prob"])
    same_rows = n <= len(cand) and np.array_equal(stored.pop("label"), cand.labels.numpy()[:n]) \
        and np.array_equal(stored.pop("latent_index"), cand.latent_index.numpy()[:n])
    return stored if str(stored.pop("key")) == key and same_rows else {}


def save_candidate_scores(layout: RunLayout, key: str, cand: Synthetic, scores: dict[str, np.ndarray]) -> None:
    write_atomic(layout.candidate_scores, lambda fh: np.savez(
        fh, key=np.array(key), label=cand.labels.numpy(), latent_index=cand.latent_index.numpy(), **scores))


def score_candidates(cand: Synthetic, start: int, models: TrainedModels, ext: ExternalClassifier,
                     real_feats: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """GAN head (or auxiliary classifier) and realism, external probabilities and features, and the
    distance to the nearest real image, for candidates start..end (new rows are appended by rounds)."""
    labels = cand.labels.numpy()[start:]
    images = cand.images[start:]
    aux = models.aux_classifier()
    aux_prob, realism = np.zeros(len(labels)), np.zeros(len(labels))
    for c in np.unique(labels):
        mask = labels == c
        idx = torch.from_numpy(np.flatnonzero(mask))
        sc = gan_scores(models.gan_for(names[c]), images[idx], cand.labels[start:][idx], aux, device=models.device)
        aux_prob[mask], realism[mask] = sc["aux_prob"], sc["realism"]
    probs, feats = ext.predict(images)
    feats = feats.astype(np.float32)
    return {"aux_prob": aux_prob, "realism": realism, "probs": probs.reshape(len(labels), -1),
            "feats": feats.reshape(len(labels), -1), "nn": nearest_distance(feats, real_feats)}


def all_candidate_scores(cfg: Config, layout: RunLayout, cand: Synthetic, models: TrainedModels,
                         ext: ExternalClassifier, real_feats: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Scores of every candidate: those stored by an earlier round of the same scorers, plus the new ones."""
    key = scorer_key(cfg, layout)
    scored = load_candidate_scores(layout, key, cand)
    start = len(scored["aux_prob"]) if scored else 0
    if not scored or start < len(cand):
        new = score_candidates(cand, start, models, ext, real_feats, names)
        scored = {k: np.concatenate([scored[k], new[k]]) for k in new} if scored else new
        save_candidate_scores(layout, key, cand, scored)
    return scored
