"""Prefect flow: augment one dataset. Tasks are thin wrappers over `augment.pipeline` stages that pass
paths, config dicts and small summaries between them, never tensors or modules.

    python -m flows.augment_dataset --data SPEC --out DIR [--config FILE.toml] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from prefect import flow, get_run_logger, task
from prefect.artifacts import (create_markdown_artifact, create_progress_artifact, create_table_artifact,
                               update_progress_artifact)
from prefect.exceptions import MissingContextError

from augment.config import build_config, config_from_dict
from augment.errors import AugmentError
from augment.pipeline import RunLayout, stage_export, stage_generate, stage_load, stage_plan, stage_score, stage_train
from augment.report import markdown_table, summary_table


def _log() -> logging.Logger | logging.LoggerAdapter:
    """The run's logger inside Prefect; a plain logger when a task's function is called directly."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("flows.augment_dataset")


@task(name="load")
def load(data: str, config: dict, out: str) -> dict:
    summary = stage_load(data, config_from_dict(config), RunLayout.for_output(out))
    _log().info("loaded %d images in %d classes from %s (fingerprint %s); counts %s",
                          summary["num_images"], len(summary["class_names"]), data, summary["fingerprint"][:12],
                          dict(zip(summary["class_names"], summary["counts"])))
    return summary


@task(name="train")
def train(config: dict, out: str) -> dict:
    logger = _log()
    artifact = create_progress_artifact(0.0, key="training-progress", description="GAN training steps done (%)")

    def on_progress(step: int, total: int, row: dict | None) -> None:
        if row is None:
            return
        update_progress_artifact(artifact, 100.0 * step / total)
        logger.info("step %d/%d  d_loss %.4f  g_loss %.4f  %.0f img/s", step, total, row["d_loss"],
                    row["g_loss"], row["imgs_per_s"])

    result = stage_train(config_from_dict(config), RunLayout.for_output(out), on_progress)
    update_progress_artifact(artifact, 100.0)
    for key, run in result["runs"].items():
        logger.info("training %s done: step %d, best checkpoint at step %d (quality %.3f), %.0f s on %s", key,
                    run["step"], run["best_step"], run["best_score"] or float("nan"), run["seconds"], run["device"])
    return result


@task(name="plan")
def plan(config: dict, out: str) -> dict:
    p = stage_plan(config_from_dict(config), RunLayout.for_output(out))
    _log().info("synthetic images planned per class: %s", p)
    return p


@task(name="generate")
def generate(config: dict, out: str, round_index: int) -> dict:
    summary = stage_generate(config_from_dict(config), RunLayout.for_output(out), round_index)
    _log().info("round %d: generated %s", round_index, summary["generated"])
    return summary


@task(name="score")
def score(config: dict, out: str) -> dict:
    summary = stage_score(config_from_dict(config), RunLayout.for_output(out))
    _log().info("kept per class %s; short %s", summary["kept"], summary["shortfall"] or "none")
    return summary


@task(name="export")
def export(config: dict, out: str) -> dict:
    summary = stage_export(config_from_dict(config), RunLayout.for_output(out))
    for name, short in summary["shortfall"].items():
        _log().warning("class %r is %d synthetic images short of the plan", name, short)
    return summary


@flow(name="augment-dataset")
def augment_dataset(data: str, out: str, config: dict[str, Any] | None = None) -> dict:
    """Load, train, generate, score and export one dataset; publishes a markdown summary artifact."""
    cfg = build_config(base=config or {})  # validates before any task runs
    cfg_dict = cfg.to_dict()
    load(data, cfg_dict, out)
    train(cfg_dict, out)
    p = plan(cfg_dict, out)
    if any(p.values()):
        for r in range(cfg.select.max_rounds):
            generate(cfg_dict, out, r)
            if not score(cfg_dict, out)["shortfall"]:
                break
    summary = export(cfg_dict, out)
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
    m = pd.read_parquet(out / "manifest.parquet", columns=["class_name", "is_synthetic", "kept", "aux_prob", "ext_prob"])
    kept = m[m["is_synthetic"] & m["kept"]].groupby("class_name")[["aux_prob", "ext_prob"]].mean()
    rows = []
    for row in summary_table(summary).to_dict(orient="records"):
        scores = kept.loc[row["class"]] if row["class"] in kept.index else None
        rows.append({**row, "mean_aux_prob_kept": None if scores is None else round(float(scores["aux_prob"]), 4),
                     "mean_ext_prob_kept": None if scores is None else round(float(scores["ext_prob"]), 4)})
    create_table_artifact(rows, key="augment-classes", description="per-class counts and mean scores of kept images")


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
    state = augment_dataset(args.data, args.out, cfg.to_dict(), return_state=True)
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
