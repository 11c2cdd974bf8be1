"""The amount stage: how many of the kept synthetic images the output takes (balance.synthetic_share;
for 'auto', chosen on held-out real images), recorded in the work folder's amount.json. scores.parquet
stays the selection's; `work_files.final_scores` applies the amount on top of it."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import torch

from augment.amount import choose_share, share_cap, share_label
from augment.atomic import read_json, write_json
from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.device import prepare_device
from augment.generate import Synthetic
from augment.layout import RunLayout
from augment.score.candidates import scorer_key


def stage_amount(cfg: Config, layout: RunLayout) -> dict:
    """Decide the share (reusing an earlier decision over the same selection and settings) and write
    amount.json: the share, why, the 'auto' curve, and the candidate rows left out."""
    scores = pd.read_parquet(layout.scores)
    key = _amount_key(cfg, layout, scores)
    stored = read_json(layout.amount) if layout.amount.exists() else {}
    if stored.get("key") == key:
        return stored
    share = cfg.balance.synthetic_share
    if share != "auto":
        record = {"setting": share, "share": share_label(share_cap(share)), "left_out": [],
                  "reason": f"set by balance.synthetic_share = {share!r}"}
    else:
        record = _auto(cfg, layout, scores)
    write_json(layout.amount, {**record, "key": key})
    return read_json(layout.amount)


def _auto(cfg: Config, layout: RunLayout, scores: pd.DataFrame) -> dict:
    data = LabeledImages.load(layout.dataset)
    cand = Synthetic.load(layout.candidates)
    kept = np.flatnonzero(scores["kept"].to_numpy(bool))
    # per class in the selection's order (rank; latent order in scores written before ranks existed)
    within = scores["rank"].to_numpy(np.int64) if "rank" in scores else cand.latent_index.numpy()
    order = kept[np.lexsort((within[kept], cand.labels.numpy()[kept]))]
    choice = choose_share(data, cand.images[torch.from_numpy(order)], cand.labels.numpy()[order],
                          cfg.balance.synthetic_weight, cfg.seed, cfg.balance.probe_steps,
                          cfg.balance.probe_seeds, prepare_device(cfg.train), cfg.balance.probe_classifiers)
    counts = np.bincount(data.labels.numpy(), minlength=data.num_classes)
    left_out = []
    for c in np.unique(cand.labels.numpy()[order]):
        rows = order[cand.labels.numpy()[order] == c]
        n = len(rows) if math.isinf(choice.share) else min(len(rows), math.floor(choice.share * counts[c]))
        left_out += rows[n:].tolist()
    return {"setting": "auto", **choice.to_dict(), "left_out": sorted(left_out)}


def _amount_key(cfg: Config, layout: RunLayout, scores: pd.DataFrame) -> str:
    material = {"balance": cfg.to_dict()["balance"], "seed": cfg.seed, "scorers": scorer_key(cfg, layout),
                "kept": hashlib.sha256(scores["kept"].to_numpy(bool).tobytes()
                                           + (scores["rank"].to_numpy(np.int64).tobytes() if "rank" in scores else b"")
                                           ).hexdigest()}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
