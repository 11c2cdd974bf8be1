"""The load stage: read and validate the data, plan the synthetic images, and set up (or reuse) the
work folder. Everything that can be refused is refused here, before anything is written."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from augment.atomic import read_json, write_json
from augment.cache import run_key
from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.data.readers import load_dataset
from augment.errors import ConfigError, as_output_error
from augment.layout import RunLayout, scheduled_run_dir
from augment.run_checks import check_and_plan, check_not_over_data, plan_notes
from augment.train_state import training_signature

log = logging.getLogger("augment")


def stage_load(source: str | LabeledImages, cfg: Config, layout: RunLayout, inputs: Sequence[Path] = ()) -> dict:
    """Read and validate the dataset and the plan, check the output target, and set up (or reuse) the
    work folder. Returns `up_to_date: True` (and does nothing) when this output was already made.
    The output may not overlap the data's files nor any of `inputs` (e.g. the config file)."""
    check_not_over_data(source, layout.out, inputs)
    data = _read(source, cfg)
    key = run_key(data.fingerprint, cfg)
    if _output_key(layout) == key:  # the same run finished before: nothing to do
        shutil.rmtree(layout.work, ignore_errors=True)  # left only if killed while tidying up
        return {"up_to_date": True, "source": data.source, "fingerprint": data.fingerprint, "key": key}
    plan = check_and_plan(data, cfg, layout.out)
    for note in plan_notes(data, cfg, plan):
        log.warning(note)
    run = {"source": data.source, "fingerprint": data.fingerprint, "training": training_signature(cfg),
           "config": cfg.to_dict()}
    if layout.run_json.exists():
        old = read_json(layout.run_json)
        same = old.get("fingerprint") == run["fingerprint"] and old.get("training") == run["training"]
        if not same:
            if not cfg.out.overwrite:
                raise ConfigError(f"An unfinished run in '{layout.work}' used other data or training settings. "
                                  "Rerun with the same ones to resume it, or pass --set out.overwrite=true to "
                                  "discard it.")
            shutil.rmtree(layout.work)
    try:
        layout.work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise as_output_error(exc, layout.work) from exc
    if not layout.dataset.exists() or not layout.run_json.exists():
        data.save(layout.dataset)
    write_json(layout.plan, plan)
    write_json(layout.run_json, run)
    return {"up_to_date": False, "source": data.source, "fingerprint": data.fingerprint, "key": key,
            "num_images": len(data), "class_names": data.class_names, "counts": data.counts(),
            "image_size": data.size, "channels": data.channels, "notes": data.notes}


def _read(source: str | LabeledImages, cfg: Config) -> LabeledImages:
    return source if isinstance(source, LabeledImages) else load_dataset(source, cfg.image, cfg.seed,
                                                                         cfg.data.allow_outside_root)


def _output_key(layout: RunLayout) -> str | None:
    try:
        return read_json(layout.out_meta).get("run_key")
    except (OSError, ValueError):
        return None


def stage_load_into_root(source: str | LabeledImages, cfg: Config, out_root: str | Path, name: str,
                         inputs: Sequence[Path] = ()) -> dict:
    """Scheduled runs: load and validate, then place this run at <out_root>/<name>/runs/<run key>. If a
    complete output for the same data and settings is already there, nothing is written and
    `up_to_date` is true. Call it holding the dataset's lock (augment.locking.run_lock)."""
    data = _read(source, cfg)
    out = scheduled_run_dir(out_root, name, run_key(data.fingerprint, cfg))
    check_not_over_data(source, out, inputs)  # the data's own files too: stage_load is handed the images read
    return {**stage_load(data, cfg, RunLayout.for_output(out), inputs), "out": str(out)}


def stage_plan(cfg: Config, layout: RunLayout) -> dict[str, int]:
    """Synthetic images per class, as validated and written by the load stage."""
    return read_json(layout.plan)
