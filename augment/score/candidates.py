"""Scoring every candidate of a run, and the caches that make later rounds cheap: the external classifier
fitted once, the real images' features and nearest-neighbour distances computed once per external
classifier, and candidate scores kept across top-up rounds and cached runs, matched by content (only
candidates not seen before are scored)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
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


def row_keys(cand: Synthetic) -> np.ndarray:
    """A 64-bit content key per candidate (blake2b of its pixels, salted with its class): scores are reused
    by content, so a candidate scored before, in an earlier round or by a cached run, is not scored again,
    and a changed image never inherits another's scores. About 0.3 s for 100,000 28-px images."""
    rows = cand.images.numpy().reshape(len(cand), -1)
    labels = cand.labels.numpy().astype("<i8")
    return np.fromiter((int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=8, salt=c.tobytes()).digest(),
                                       "little") for r, c in zip(rows, labels)), dtype=np.uint64, count=len(cand))


def stored_scores(path: Path, key: str) -> dict[str, np.ndarray]:
    """The scores in a candidate-scores file if the same scorers made them (with their row keys); else none."""
    if not path.exists():
        return {}
    with np.load(path) as z:
        stored = {k: z[k] for k in z.files}
    return stored if str(stored.get("key")) == key and {"row_key", FROM_CACHE} <= set(stored) else {}


def save_candidate_scores(layout: RunLayout, key: str, keys: np.ndarray, scores: dict[str, np.ndarray]) -> None:
    """The scores in candidate order with each row's content key (what matches them, not the row's place)."""
    write_atomic(layout.candidate_scores, lambda fh: np.savez(fh, key=np.array(key), row_key=keys, **scores))


def score_candidates(cand: Synthetic, rows: np.ndarray, models: TrainedModels, ext: ExternalClassifier,
                     real_feats: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """GAN head (or auxiliary classifier) and realism, external probabilities and features, and the
    distance to the nearest real image, for the candidates at `rows`."""
    take = torch.from_numpy(rows)
    labels = cand.labels[take]
    images = cand.images[take]
    aux = models.aux_classifier()
    aux_prob, realism = np.zeros(len(labels)), np.zeros(len(labels))
    for c in np.unique(labels.numpy()):
        mask = labels.numpy() == c
        idx = torch.from_numpy(np.flatnonzero(mask))
        sc = gan_scores(models.gan_for(names[c]), images[idx], labels[idx], aux, device=models.device)
        aux_prob[mask], realism[mask] = sc["aux_prob"], sc["realism"]
    probs, feats = ext.predict(images)
    feats = feats.astype(np.float32)
    return {"aux_prob": aux_prob, "realism": realism, "probs": probs.reshape(len(labels), -1),
            "feats": feats.reshape(len(labels), -1), "nn": nearest_distance(feats, real_feats)}


def all_candidate_scores(cfg: Config, layout: RunLayout, cand: Synthetic, models: TrainedModels,
                         ext: ExternalClassifier, real_feats: np.ndarray, names: list[str],
                         earlier: Sequence[Path] = ()) -> dict[str, np.ndarray]:
    """Scores of every candidate, in candidate order: those the same scorers stored before (this run's
    earlier rounds, then the `earlier` files, e.g. a cached run's), matched by content, plus new ones for the
    rest; `from_cache` says which came from an `earlier` file. Saved for the next round whenever anything was
    scored or reused from elsewhere."""
    key = scorer_key(cfg, layout)
    keys = row_keys(cand)
    found = np.zeros(len(cand), dtype=bool)
    out: dict[str, np.ndarray] = {}
    for path in (layout.candidate_scores, *earlier):
        stored = stored_scores(path, key)
        if not stored:
            continue
        ours = path == layout.candidate_scores
        unique, first = np.unique(stored["row_key"], return_index=True)
        pos = np.minimum(np.searchsorted(unique, keys), len(unique) - 1)
        hit = ~found & (unique[pos] == keys) if len(unique) else np.zeros(len(cand), dtype=bool)
        if ours and hit.all() and np.array_equal(stored["row_key"], keys):
            return {k: stored[k] for k in (*SCORES, FROM_CACHE)}  # this run's file, row for row: nothing to do
        rows = first[pos[hit]]
        _fill(out, {**{k: stored[k][rows] for k in SCORES},
                    FROM_CACHE: stored[FROM_CACHE][rows] if ours else np.ones(len(rows), dtype=bool)}, hit)
        found |= hit
    if not found.all() or not out:
        rows = np.flatnonzero(~found)
        new = score_candidates(cand, rows, models, ext, real_feats, names)
        _fill(out, {**new, FROM_CACHE: np.zeros(len(rows), dtype=bool)}, ~found)
    save_candidate_scores(layout, key, keys, out)
    return out


SCORES = ("aux_prob", "realism", "probs", "feats", "nn")
FROM_CACHE = "from_cache"  # per candidate: its scores came from an earlier run's (the cache), not this run's


def _fill(out: dict[str, np.ndarray], part: dict[str, np.ndarray], rows: np.ndarray) -> None:
    """Put `part`'s arrays at the `rows` (a mask over every candidate) of `out`'s, made on first use."""
    for k, v in part.items():
        if k not in out:
            out[k] = np.zeros((len(rows), *v.shape[1:]), dtype=v.dtype)
        out[k][rows] = v
