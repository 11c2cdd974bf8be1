"""dataset.json: what a run did and with what, assembled in one place from the stages' results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from augment.cache import run_key
from augment.checkpoint import generator_sha256, load_with_sha256
from augment.columns import descriptions
from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.layout import GAN_DIR
from augment.models.backbone import has_spectral_norm
from augment.provenance import now_iso, package_versions
from augment.version import __version__

REALISM = "sigmoid of the discriminator's adversarial logit"
NN_DISTANCE = "distance to the nearest real training image in the external classifier's feature space"
SELECTED_BY = "pixel-probe quality check (fidelity x diversity)"
WEIGHTS = ("manifest 'weight': per row, so that each class's rows weigh its planned size in all (classes "
           "balanced in expectation); a kept synthetic row weighs balance.synthetic_weight x a real row of its "
           "class; rows not kept weigh 0")


def checkpoint_records(training: dict, train_dir: Path) -> list[dict]:
    """One entry per trained GAN: its best checkpoint's file digest and weights digest, whether its
    discriminator has spectral norm, the steps, score, classes it serves and what happened in training."""
    records = []
    for key, run in training["runs"].items():
        state, sha256 = load_with_sha256(train_dir / run["best_checkpoint"])
        records.append({"path": f"{GAN_DIR}/{run['best_checkpoint']}", "sha256": sha256,
                        "generator_sha256": generator_sha256(state),
                        "spectral_norm": has_spectral_norm(state["discriminator"]),
                        "step": run["best_step"], "steps_trained": run["step"], "quality_score": run["best_score"],
                        "classes": [n for n, k in training["class_runs"].items() if k == key],
                        "seconds": run["seconds"], "resumed_from": run["resumed_from"], "problems": run["problems"],
                        "rollbacks": run.get("rollbacks", 0), "batch_size": run.get("batch_size")})
    return records


def _training_summary(training: dict) -> dict:
    runs = training["runs"].values()
    return {"variant": training["variant"], "seconds": training["seconds"], "device": training["device"],
            "precision": next(iter(runs), {}).get("precision"),
            # per GAN, CPU threads as they changed: {job: [[seconds into training, count], ...]}
            "threads": {name: r.get("threads") for name, r in training["runs"].items()},
            "from_cache": training.get("from_cache", False), "key": training.get("key"),
            "steps": max((r["step"] for r in runs), default=0),
            "resumed_from": max((r["resumed_from"] for r in runs), default=0)}


def dataset_record(cfg: Config, data: LabeledImages, plan: dict[str, int], training: dict, selection: dict,
                   checkpoints: list[dict], scores: pd.DataFrame, candidate_labels: np.ndarray,
                   quality: pd.DataFrame | None, amount: dict | None = None) -> dict:
    """The dataset.json of a run (the output writer adds `class_dirs`)."""
    names = data.class_names
    kept = scores["kept"].to_numpy(bool)
    before = data.counts_by_name()
    kept_by = {n: int(kept[candidate_labels == c].sum()) for c, n in enumerate(names)}
    tolerance = cfg.train.best_tolerance
    return {
        "augment_version": __version__, "created_at": now_iso(), "source": data.source, "seed": cfg.seed,
        "run_key": run_key(data.fingerprint, cfg),
        "dataset_fingerprint": data.fingerprint, "class_names": names,
        "image": {"size": data.size, "channels": data.channels},
        "counts_before": before, "plan": plan, "kept": kept_by,
        "rejected": {n: int((~kept[candidate_labels == c]).sum()) for c, n in enumerate(names)},
        "counts_after": {n: before[n] + kept_by[n] for n in names},
        "shortfall": selection["shortfall"], "normalisation": data.notes,
        "scorers": {"aux_prob": training["aux_scorer"], "realism": REALISM,
                    "ext_prob": f"external classifier '{cfg.score.external}' trained on the real images only",
                    "nn_distance": NN_DISTANCE},
        "columns": descriptions(),
        "external_classifier": selection["external"], "copy_threshold": selection["copy_threshold"],
        "candidate_scores_from_cache": selection.get("scores_from_cache", 0),
        "rejected_by": selection["rejected_by"], "manifold": selection.get("manifold"),
        "synthetic_share": ({**{k: v for k, v in amount.items() if k not in ("key", "left_out")},
                             "candidates_left_out": len(amount.get("left_out", []))} if amount else None),
        "weights": WEIGHTS,
        "quality": quality.to_dict(orient="records") if quality is not None else None,
        "checkpoint": checkpoints[0] if checkpoints else None, "checkpoints": checkpoints,
        "checkpoint_selected_by": SELECTED_BY + (
            f": the latest checkpoint within train.best_tolerance = {tolerance} of the highest score"
            if tolerance else ""),
        "training": {**_training_summary(training), "steps_planned": cfg.train.steps,
                     "max_seconds": cfg.train.max_seconds},
        "config": cfg.to_dict(), "package_versions": package_versions(),
    }


def generator_ids(cfg: Config, checkpoints: list[dict]) -> dict[str, str]:
    """The manifest's generator column per class name: variant@ the first 12 hex digits of its weights' digest."""
    return {c: f"{cfg.model.variant}@{ck['generator_sha256'][:12]}" for ck in checkpoints for c in ck["classes"]}
