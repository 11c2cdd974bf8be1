"""The export stage: the output folder (images, manifest, dataset.json, report), written atomically;
then the work folder goes."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from augment.atomic import read_json
from augment.columns import score_names
from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.generate import Synthetic
from augment.layout import RunLayout
from augment.output import write_dataset
from augment.record import checkpoint_records, dataset_record, generator_ids
from augment.report import write_report
from augment.score.kept import kept_quality
from augment.work_files import final_scores

log = logging.getLogger("augment")
NO_SELECTION = {"shortfall": {}, "rejected_by": {}, "external": None, "copy_threshold": None}

ReportSections = list[tuple[str, pd.DataFrame]]


def stage_export(cfg: Config, layout: RunLayout, extra_sections: ReportSections | None = None) -> dict:
    """Write the output folder atomically, then remove the work folder. `extra_sections` are added to the
    report (the demo's downstream check). Returns the summary."""
    t0 = time.perf_counter()
    data = LabeledImages.load(layout.dataset)
    training = read_json(layout.train_result)
    cand = Synthetic.load(layout.candidates) if layout.candidates.exists() else \
        Synthetic.empty(data.channels, data.size, cfg.seed)
    scores = final_scores(layout) if layout.scores.exists() else pd.DataFrame({c: [] for c in score_names()})
    amount = read_json(layout.amount) if layout.amount.exists() else None
    selection = read_json(layout.selection) if layout.selection.exists() else NO_SELECTION
    quality = kept_quality(cfg, layout, data, cand, scores, selection["copy_threshold"])
    checkpoints = checkpoint_records(training, layout.train_dir)
    plan = read_json(layout.plan)
    meta = dataset_record(cfg, data, plan, training, selection, checkpoints, scores, cand.labels.numpy(), quality,
                          amount)
    meta["stage_seconds"] = read_json(layout.stage_seconds) if layout.stage_seconds.exists() else {}

    def finish_record(m: dict) -> dict:  # export's own seconds: everything up to dataset.json, images included
        return {**m, "stage_seconds": {**m["stage_seconds"], "export": round(time.perf_counter() - t0, 3)}}

    targets = np.array([n + plan[name] for name, n in data.counts_by_name().items()])
    for n, k in selection["shortfall"].items():
        log.warning("class %r: %d synthetic images short of the plan after %d rounds", n, k, cfg.select.max_rounds)
    generator_of = generator_ids(cfg, checkpoints)
    names = data.class_names
    write_dataset(
        layout.out, data, cand, scores, meta, generator=lambda c: generator_of.get(names[c], cfg.model.variant),
        train_dir=layout.train_dir, overwrite=cfg.out.overwrite, targets=targets,
        synthetic_weight=cfg.balance.synthetic_weight, finish_record=finish_record,
        extras=lambda tmp, m, record: write_report(tmp, record, m, quality, extra_sections))
    shutil.rmtree(layout.work, ignore_errors=True)
    return summary_from_output(layout.out)


def summary_from_output(out: str | Path) -> dict:
    """The summary `stage_export` returned, rebuilt from a finished output folder."""
    layout = RunLayout.for_output(out)
    meta = read_json(layout.out_meta)
    rows = len(pd.read_parquet(layout.out_manifest, columns=["path"]))
    return {"out": str(out), "manifest_rows": rows, "class_names": meta["class_names"],
            "quality": meta.get("quality"), "external_classifier": meta.get("external_classifier"),
            "counts_before": meta["counts_before"], "plan": meta["plan"], "kept": meta["kept"],
            "rejected": meta["rejected"], "counts_after": meta["counts_after"], "shortfall": meta["shortfall"],
            "checkpoint_step": (meta.get("checkpoint") or {}).get("step", 0),
            "synthetic_share": meta.get("synthetic_share"),
            "train_seconds": meta["training"]["seconds"], "training": meta["training"],
            "stage_seconds": meta.get("stage_seconds", {})}
