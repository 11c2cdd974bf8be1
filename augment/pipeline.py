"""The stage sequence, written once: train -> plan -> (generate, score) rounds -> amount -> export.

The CLI and the demo (`run_pipeline`), the Prefect flow (its own `Stages` that calls each stage as a
task) and the imbalanced-learn sampler (no export) all go through `run_stages`. A rerun with the same
inputs and config picks up where an interrupted one stopped (training resumes from its last
checkpoint); the output folder appears only when complete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.layout import RunLayout
from augment.locking import run_lock
from augment.stages import (
    stage_amount,
    stage_export,
    stage_generate,
    stage_load,
    stage_plan,
    stage_score,
    stage_train,
    summary_from_output,
)
from augment.stages.export import ReportSections
from augment.train import ProgressFn


@dataclass
class Stages:
    """How `run_stages` calls each stage: here, as plain calls in this process. `on_stage(name)` is told
    as each stage starts; `on_progress` sees training steps; `cache` is a training cache folder;
    `before_export(layout)` may return extra report sections (the demo's downstream check). The Prefect
    flow subclasses this to run each stage as a task."""

    on_progress: ProgressFn | None = None
    on_stage: Callable[[str], None] | None = None
    cache: str | Path | None = None
    before_export: Callable[[RunLayout], ReportSections] | None = None

    def tell(self, what: str) -> None:
        if self.on_stage is not None:
            self.on_stage(what)

    def train(self, cfg: Config, layout: RunLayout) -> dict:
        return stage_train(cfg, layout, self.on_progress, cache=self.cache)

    def plan(self, cfg: Config, layout: RunLayout) -> dict[str, int]:
        return stage_plan(cfg, layout)

    def generate(self, cfg: Config, layout: RunLayout, round_index: int) -> dict:
        return stage_generate(cfg, layout, round_index)

    def score(self, cfg: Config, layout: RunLayout) -> dict:
        return stage_score(cfg, layout)

    def amount(self, cfg: Config, layout: RunLayout) -> dict:
        return stage_amount(cfg, layout)

    def export(self, cfg: Config, layout: RunLayout) -> dict:
        return stage_export(cfg, layout, self.before_export(layout) if self.before_export else None)


def run_stages(cfg: Config, layout: RunLayout, stages: Stages | None = None, export: bool = True) -> dict:
    """Every stage after load, in order: train, plan, then generation and scoring rounds until no class is
    short (at most select.max_rounds), the amount of synthetic data to keep, then export. Returns the
    export's summary; with export=False, the plan and the last selection (None when nothing was planned)."""
    stages = stages or Stages()
    stages.tell("train")
    stages.train(cfg, layout)
    stages.tell("plan")
    plan = stages.plan(cfg, layout)
    selection = None
    if any(plan.values()):
        for r in range(cfg.select.max_rounds):
            stages.tell("generate" if r == 0 else f"generate (top-up round {r})")
            stages.generate(cfg, layout, r)
            stages.tell("score")
            selection = stages.score(cfg, layout)
            if not selection["shortfall"]:
                break
        stages.tell("amount")
        selection = {**selection, "amount": stages.amount(cfg, layout)}
    if not export:
        return {"plan": plan, "selection": selection}
    stages.tell("export")
    return stages.export(cfg, layout)


def run_pipeline(source: str | LabeledImages, cfg: Config, out: str | Path, stages: Stages | None = None,
                 inputs: Sequence[Path] = ()) -> dict:
    """Load `source` and run every stage into the output folder `out`, holding the output's lock; a
    finished output for the same data and settings is left as it is (`up_to_date`). `out` may not
    overlap the data nor any of `inputs` (the config file)."""
    stages = stages or Stages()
    layout = RunLayout.for_output(out)
    with run_lock(layout.lock):
        stages.tell("load")
        if stage_load(source, cfg, layout, inputs)["up_to_date"]:
            stages.tell("up to date: the same data and settings produced this output before")
            return {**summary_from_output(layout.out), "up_to_date": True}
        return run_stages(cfg, layout, stages)
