"""What the stages hand each other through the work folder, read in one place: the quota each class is
generated and selected for, the scores with the amount applied, and the synthetic images the output takes.
A foundation, so that no stage imports another (the demo and the sampler read it too)."""

from __future__ import annotations

import pandas as pd
import torch

from augment.amount import synthetic_quota
from augment.atomic import read_json
from augment.columns import LEFT_OUT
from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.generate import Synthetic
from augment.layout import RunLayout


def run_quota(cfg: Config, layout: RunLayout, data: LabeledImages) -> dict[str, int]:
    """Synthetic images each class is generated and selected for: the plan, capped at
    balance.synthetic_share x its real images ('auto' generates for the whole plan and decides later)."""
    return synthetic_quota(read_json(layout.plan), data.counts_by_name(), cfg.balance.synthetic_share)


def final_scores(layout: RunLayout) -> pd.DataFrame:
    """scores.parquet with the amount applied: kept candidates the share left out are not kept, with
    reject_reason 'share'."""
    scores = pd.read_parquet(layout.scores)
    if layout.amount.exists():
        left_out = read_json(layout.amount)["left_out"]
        if left_out:
            scores.loc[left_out, "kept"] = False
            scores.loc[left_out, "reject_reason"] = LEFT_OUT
    return scores


def kept_candidates(layout: RunLayout) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The synthetic images the output takes (uint8) and their labels, from a scored work folder (with
    the amount applied when it was decided); None before any candidate was generated."""
    if not layout.candidates.exists():
        return None
    cand = Synthetic.load(layout.candidates)
    kept = torch.from_numpy(final_scores(layout)["kept"].to_numpy(bool).copy())
    return cand.images[kept], cand.labels[kept]
