"""Prefect flow: augment one dataset. Tasks are thin wrappers over `augment.pipeline` stages that pass
paths, config dicts and small summaries between them, never tensors or modules.

    python -m flows.augment_dataset --data SPEC --out DIR [--config FILE.toml] [--set key=value ...]

Scheduled runs (`flows/augment_all.py`) call it with `out_root` and `name` instead of `out`: each run
then lands in <out_root>/<name>/runs/<run key>/, is skipped when that output already exists, reuses a
cached training when only the plan or selection changed, and moves <out_root>/<name>/latest to it.
"""

from __future__ import annotations

import argparse
import logging
import re
import socket
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError

from augment.config import Config, build_config, config_from_dict
from augment.device import resolve_device
from augment.device_slots import device_slot
from augment.errors import AugmentError
from augment.layout import RunLayout
from augment.pipeline import Stages, run_pipeline, run_scheduled
from augment.report import markdown_table, stage_seconds_line, summary_table
from augment.stages import (
    stage_amount,
    stage_export,
    stage_generate,
    stage_load,
    stage_load_into_root,
    stage_plan,
    stage_score,
    stage_train,
)


def _log() -> logging.Logger | logging.LoggerAdapter:
    """The run's logger inside Prefect; a plain logger when a task's function is called directly."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("flows.augment_dataset")


def transient(task_, task_run, state) -> bool:
    """Retry on everything but bad input or configuration (AugmentError): I/O hiccups, a crashed device."""
    try:
        state.result()
    except AugmentError:
        return False
    except Exception:  # noqa: BLE001  anything else may pass on a second try
        return True
    return False


STAGE = {"retries": 2, "retry_delay_seconds": [10, 60], "retry_condition_fn": transient, "cache_policy": NO_CACHE}


def device_work(cfg: Config):
    """This machine's slot for device work (`augment.device_slots`: kernel locks that die with their holder,
    so a lost Prefect server or a killed worker never leaves the device taken)."""
    name = f"augment-{resolve_device(cfg.train.device).type}"
    return device_slot(name, on_wait=lambda holders: _log().info("waiting for the %s slot on %s, held by %s",
                                                                name, socket.gethostname(), holders))


@task(name="load", cache_policy=NO_CACHE)
def load(data: str, config: dict, out: str, inputs: list[str] | None = None) -> dict:
    summary = stage_load(data, config_from_dict(config), RunLayout.for_output(out), [Path(p) for p in inputs or []])
    if summary["up_to_date"]:
        _log().info("%s: the same data and settings produced %s before; nothing to do", data, out)
    else:
        _log().info("loaded %d images in %d classes from %s (fingerprint %s); counts %s",
                    summary["num_images"], len(summary["class_names"]), data, summary["fingerprint"][:12],
                    dict(zip(summary["class_names"], summary["counts"])))
    return summary


@task(name="load-into-root", cache_policy=NO_CACHE)
def load_into_root(data: str, config: dict, out_root: str, name: str, inputs: list[str] | None = None) -> dict:
    summary = stage_load_into_root(data, config_from_dict(config), out_root, name, [Path(p) for p in inputs or []])
    _log().info("%s: run %s %s", name, summary["key"][:16],
                "is up to date; nothing to do" if summary["up_to_date"] else f"goes to {summary['out']}")
    return summary


@task(name="train", **STAGE)
def train(config: dict, out: str, cache: str | None = None) -> dict:
    logger = _log()
    cfg = config_from_dict(config)
    artifact = create_progress_artifact(0.0, key="training-progress", description="GAN training steps done (%)")

    def on_progress(step: int, total: int, row: dict | None) -> None:
        if row is None:
            return
        update_progress_artifact(artifact, 100.0 * step / total)
        logger.info("step %d/%d  d_loss %.4f  g_loss %.4f  %.0f img/s", step, total, row["d_loss"],
                    row["g_loss"], row["imgs_per_s"])

    with device_work(cfg):
        result = stage_train(cfg, RunLayout.for_output(out), on_progress, cache=cache)
    update_progress_artifact(artifact, 100.0)
    if result.get("from_cache"):
        logger.info("training reused from the cache (key %s)", result["key"][:12])
    for key, run in result["runs"].items():
        logger.info("training %s: step %d, best checkpoint at step %d (quality %.3f), %.0f s on %s", key,
                    run["step"], run["best_step"], run["best_score"] or float("nan"), run["seconds"], run["device"])
    return result


@task(name="plan", cache_policy=NO_CACHE)
def plan(config: dict, out: str) -> dict:
    p = stage_plan(config_from_dict(config), RunLayout.for_output(out))
    _log().info("synthetic images planned per class: %s", p)
    return p


@task(name="generate", **STAGE)
def generate(config: dict, out: str, round_index: int) -> dict:
    cfg = config_from_dict(config)
    with device_work(cfg):
        summary = stage_generate(cfg, RunLayout.for_output(out), round_index)
    _log().info("round %d: generated %s", round_index, summary["generated"])
    return summary


@task(name="score", **STAGE)
def score(config: dict, out: str, cache: str | None = None) -> dict:
    cfg = config_from_dict(config)
    with device_work(cfg):
        summary = stage_score(cfg, RunLayout.for_output(out), cache=cache)
    _log().info("kept per class %s; short %s; rejected by %s", summary["kept"], summary["shortfall"] or "none",
                summary["rejected_by"])
    return summary


@task(name="amount", **STAGE)
def amount(config: dict, out: str) -> dict:
    cfg = config_from_dict(config)
    with device_work(cfg):
        decision = stage_amount(cfg, RunLayout.for_output(out))
    _log().info("synthetic share %s: %s", decision["share"], decision["reason"])
    return decision


@task(name="export", **STAGE)
def export(config: dict, out: str) -> dict:
    summary = stage_export(config_from_dict(config), RunLayout.for_output(out))
    for name, short in summary["shortfall"].items():
        _log().warning("class %r is %d synthetic images short of the plan", name, short)
    return summary


class TaskStages(Stages):
    """The pipeline's one stage sequence (augment.pipeline: run_pipeline, run_scheduled, run_stages), each
    stage run as the task above: tasks get the config as a dict and the output folder as a path, never
    objects; the data is a SPEC (a string)."""

    def load(self, source, cfg: Config, layout: RunLayout, inputs) -> dict:
        return load(source, cfg.to_dict(), str(layout.out), [str(p) for p in inputs])

    def load_into_root(self, source, cfg: Config, out_root: Path, name: str, inputs) -> dict:
        return load_into_root(source, cfg.to_dict(), str(out_root), name, [str(p) for p in inputs])

    def train(self, cfg: Config, layout: RunLayout) -> dict:
        return train(cfg.to_dict(), str(layout.out), self.cache)

    def plan(self, cfg: Config, layout: RunLayout) -> dict:
        return plan(cfg.to_dict(), str(layout.out))

    def generate(self, cfg: Config, layout: RunLayout, round_index: int) -> dict:
        return generate(cfg.to_dict(), str(layout.out), round_index)

    def score(self, cfg: Config, layout: RunLayout) -> dict:
        return score(cfg.to_dict(), str(layout.out), self.cache)

    def amount(self, cfg: Config, layout: RunLayout) -> dict:
        return amount(cfg.to_dict(), str(layout.out))

    def export(self, cfg: Config, layout: RunLayout) -> dict:
        return export(cfg.to_dict(), str(layout.out))


@flow(name="augment-dataset")
def augment_dataset(data: str, out: str | None = None, config: dict[str, Any] | None = None,
                    out_root: str | None = None, name: str | None = None, cache: str | None = None,
                    lock_timeout: float = 3600.0, inputs: list[str] | None = None) -> dict:
    """Load, train, generate, score and export one dataset; publishes the report as artifacts.
    Give `out` (a folder), or `out_root` and `name` for scheduled runs (see the module docstring);
    `inputs`: files the output must not overlap (the config file), as `augment run` refuses them."""
    cfg = build_config(base=config or {})  # validates before any task runs
    if (out is None) == (out_root is None) or (out_root is not None and not name):
        raise ValueError("give either out, or out_root and name")
    stages, given = TaskStages(cache=cache), [Path(p) for p in inputs or []]
    if out is not None:
        summary = run_pipeline(data, cfg, out, stages, given, lock_timeout=lock_timeout)
    else:
        summary = run_scheduled(data, cfg, out_root, name, stages, given, lock_timeout=lock_timeout)
    publish_report(data, summary)
    return summary


def publish_report(data: str, summary: dict) -> None:
    """The run's report as Prefect artifacts: the summary, the report's text (figures stay in the
    output folder, named there), and a table of per-class counts and mean scores of kept images."""
    out = Path(summary["out"])
    create_markdown_artifact(
        key="augment-summary", description=f"augment: {data}",
        markdown=f"# augment: `{data}`\n\nOutput: `{out}`\n\n{markdown_table(summary_table(summary))}\n")
    report = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", lambda m: f"*({m.group(1)}: `{out / m.group(2)}`)*",
                    (out / "report.md").read_text())
    create_markdown_artifact(key="augment-report", markdown=report, description=f"report.html: {out / 'report.html'}")
    m = pd.read_parquet(out / "manifest.parquet",
                        columns=["class_name", "is_synthetic", "kept", "aux_prob", "ext_prob"])
    kept = m[m["is_synthetic"] & m["kept"]].groupby("class_name")[["aux_prob", "ext_prob"]].mean()
    rows = []
    for row in summary_table(summary).to_dict(orient="records"):
        scores = kept.loc[row["class"]] if row["class"] in kept.index else None
        rows.append({**row, "mean_aux_prob_kept": None if scores is None else round(float(scores["aux_prob"]), 4),
                     "mean_ext_prob_kept": None if scores is None else round(float(scores["ext_prob"]), 4)})
    create_table_artifact(rows, key="augment-classes", description="per-class counts and mean scores of kept images")
    seconds = summary.get("stage_seconds") or {}
    if seconds:
        create_table_artifact([{"stage": k, "seconds": v} for k, v in seconds.items()], key="augment-stage-seconds",
                              description=stage_seconds_line(seconds))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m flows.augment_dataset", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, metavar="SPEC")
    p.add_argument("--out", required=True)
    p.add_argument("--config", metavar="FILE.toml")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    try:
        cfg = build_config(args.config, args.sets)
    except AugmentError as exc:
        print(f"augment: error: {exc}", file=sys.stderr)
        return 2
    state = augment_dataset(args.data, args.out, cfg.to_dict(), inputs=[args.config] if args.config else None,
                            return_state=True)
    if state.is_completed():
        print(markdown_table(summary_table(state.result())))
        return 0
    try:
        state.result()
    except AugmentError as exc:
        print(f"augment: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001  the flow's own failure, reported by Prefect too
        print(f"augment: flow failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 1


if __name__ == "__main__":
    sys.exit(main())
