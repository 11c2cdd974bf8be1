"""The generate stage: candidates per class from each class's best checkpoint; round 0 generates
select.oversample x the plan, later rounds top up the classes the selection left short."""

from __future__ import annotations

import math

from augment.atomic import read_json
from augment.balance import planned_by_index
from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.device import prepare_device
from augment.generate import Synthetic, generate
from augment.layout import RunLayout
from augment.trained import TrainedModels
from augment.work_files import run_quota


def stage_generate(cfg: Config, layout: RunLayout, round_index: int = 0) -> dict:
    """Generate this round's candidates and append them to the work folder's candidates."""
    data = LabeledImages.load(layout.dataset)
    names = data.class_names
    models = TrainedModels(layout, prepare_device(cfg.train))
    if round_index == 0:
        planned = planned_by_index(run_quota(cfg, layout, data), names)
        todo = {c: math.ceil(n * cfg.select.oversample) for c, n in planned.items()}
        existing = None
    else:
        existing = Synthetic.load(layout.candidates)
        short = read_json(layout.selection)["shortfall"]
        todo = {names.index(n): math.ceil(k * cfg.select.oversample * 2 ** round_index) for n, k in short.items()}
    start = {}  # the next latent index per class, so a top-up never repeats a candidate
    if existing is not None:
        for c in todo:
            have = existing.latent_index[existing.labels == c]
            start[c] = int(have.max()) + 1 if len(have) else 0
    every = existing
    for c, n in sorted(todo.items()):
        new = generate(models.gan_for(names[c]), {c: n}, cfg.seed, start, round_index, device=models.device,
                       precision=cfg.train.precision)
        every = new if every is None else every.concat(new)
    every.save(layout.candidates)
    return {"round": round_index, "generated": {names[c]: n for c, n in todo.items()}, "candidates": len(every)}
