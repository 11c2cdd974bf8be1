"""The stage sequence, written once: train -> plan -> (generate, score) rounds -> amount -> export.

The CLI and the demo (`run_pipeline`), the Prefect flow (its own `Stages` that calls each stage as a
task) and the imbalanced-learn sampler (no export) all go through `run_stages`. A rerun with the same
inputs and config picks up where an interrupted one stopped (training resumes from its last
checkpoint); the output folder appears only when complete.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from augment.atomic import read_json, write_json
from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.layout import RunLayout
from augment.run_checks import guarded_lock
from augment.scheduled import point_latest
from augment.select import is_last_round
from augment.stages import (
    stage_amount,
    stage_export,
    stage_generate,
    stage_load,
    stage_load_into_root,
    stage_plan,
    stage_score,
    stage_train,
    summary_from_output,
)
from augment.stages.export import ReportSections

if TYPE_CHECKING:  # a type alias only: the pipeline runs training through the train stage
    from augment.train_state import ProgressFn

T = TypeVar("T")


@dataclass
class Stages:
    """How `run_stages` calls each stage: here, as plain calls in this process. `on_stage(name)` is told
    as each stage starts; `on_progress` sees training steps; `cache` is a training cache folder (GANs and
    the external judge);
    `before_export(layout)` may return extra report sections (the demo's downstream check). The Prefect
    flow subclasses this to run each stage as a task."""

    on_progress: ProgressFn | None = None
    on_stage: Callable[[str], None] | None = None
    cache: str | Path | None = None
    before_export: Callable[[RunLayout], ReportSections] | None = None

    def tell(self, what: str) -> None:
        if self.on_stage is not None:
            self.on_stage(what)

    def load(self, source: str | LabeledImages, cfg: Config, layout: RunLayout, inputs: Sequence[Path]) -> dict:
        return stage_load(source, cfg, layout, inputs)

    def load_into_root(self, source: str | LabeledImages, cfg: Config, out_root: Path, name: str,
                       inputs: Sequence[Path]) -> dict:
        return stage_load_into_root(source, cfg, out_root, name, inputs)

    def train(self, cfg: Config, layout: RunLayout) -> dict:
        return stage_train(cfg, layout, self.on_progress, cache=self.cache)

    def plan(self, cfg: Config, layout: RunLayout) -> dict[str, int]:
        return stage_plan(cfg, layout)

    def generate(self, cfg: Config, layout: RunLayout, round_index: int) -> dict:
        return stage_generate(cfg, layout, round_index)

    def score(self, cfg: Config, layout: RunLayout) -> dict:
        return stage_score(cfg, layout, cache=self.cache)

    def amount(self, cfg: Config, layout: RunLayout) -> dict:
        return stage_amount(cfg, layout)

    def export(self, cfg: Config, layout: RunLayout) -> dict:
        return stage_export(cfg, layout, self.before_export(layout) if self.before_export else None)


def record_seconds(layout: RunLayout, stage: str, seconds: float) -> None:
    """Add a stage's wall seconds to the work folder's stage_seconds.json (rounds and top-ups add up)."""
    so_far = read_json(layout.stage_seconds) if layout.stage_seconds.exists() else {}
    write_json(layout.stage_seconds, {**so_far, stage: round(so_far.get(stage, 0.0) + seconds, 3)})


def timed(layout: RunLayout, stage: str, call: Callable[[], T]) -> T:
    """Run one stage and record its wall seconds (in the work folder, so stages run as Prefect tasks in
    other processes are counted too)."""
    t0 = time.perf_counter()
    result = call()
    if layout.work.exists():  # the export removes the work folder: its own time goes in through export
        record_seconds(layout, stage, time.perf_counter() - t0)
    return result


def run_stages(cfg: Config, layout: RunLayout, stages: Stages | None = None, export: bool = True) -> dict:
    """Every stage after load, in order: train, plan, then generation and scoring rounds until no class is
    short (at most select.max_rounds), the amount of synthetic data to keep, then export. Returns the
    export's summary; with export=False, the plan and the last selection (None when nothing was planned)."""
    stages = stages or Stages()
    stages.tell("train")
    timed(layout, "train", lambda: stages.train(cfg, layout))
    stages.tell("plan")
    plan = timed(layout, "plan", lambda: stages.plan(cfg, layout))
    selection = None
    if any(plan.values()):
        for r in range(cfg.select.max_rounds):
            stages.tell("generate" if r == 0 else f"generate (top-up round {r})")
            timed(layout, "generate", lambda r=r: stages.generate(cfg, layout, r))
            stages.tell("score")
            selection = timed(layout, "score", lambda: stages.score(cfg, layout))
            if is_last_round(selection["shortfall"], r, cfg.select):
                break
        stages.tell("amount")
        selection = {**selection, "amount": timed(layout, "amount", lambda: stages.amount(cfg, layout))}
    if not export:
        return {"plan": plan, "selection": selection}
    stages.tell("export")
    return stages.export(cfg, layout)


def run_pipeline(source: str | LabeledImages, cfg: Config, out: str | Path, stages: Stages | None = None,
                 inputs: Sequence[Path] = (), lock_timeout: float = 0.0) -> dict:
    """Load `source` and run every stage into the output folder `out`, holding the output's lock (waiting
    up to lock_timeout seconds for it); a finished output for the same data and settings is left as it is
    (`up_to_date`). `out` may not overlap the data nor any of `inputs` (the config file). The CLI, the
    demo and the Prefect flow all come through here, so every guard holds for each of them."""
    stages = stages or Stages()
    layout = RunLayout.for_output(out)
    with guarded_lock(source, layout.out, layout.lock, inputs, lock_timeout):
        stages.tell("load")
        if timed(layout, "load", lambda: stages.load(source, cfg, layout, inputs))["up_to_date"]:
            stages.tell("up to date: the same data and settings produced this output before")
            return {**summary_from_output(layout.out), "up_to_date": True}
        return {**run_stages(cfg, layout, stages), "up_to_date": False}


def run_scheduled(source: str | LabeledImages, cfg: Config, out_root: str | Path, name: str,
                  stages: Stages | None = None, inputs: Sequence[Path] = (), lock_timeout: float = 0.0) -> dict:
    """A scheduled run of dataset `name`: holding <out_root>/<name>'s lock, load and place the run at
    <out_root>/<name>/runs/<run key> (left as it is when up to date), run the stages there and point
    <out_root>/<name>/latest at it."""
    stages = stages or Stages()
    with guarded_lock(source, Path(out_root) / name, Path(out_root) / name / ".lock", inputs, lock_timeout):
        stages.tell("load")
        t0 = time.perf_counter()
        placed = stages.load_into_root(source, cfg, Path(out_root), name, inputs)
        out = Path(placed["out"])
        if not placed["up_to_date"]:
            record_seconds(RunLayout.for_output(out), "load", time.perf_counter() - t0)
        summary = summary_from_output(out) if placed["up_to_date"] else \
            run_stages(cfg, RunLayout.for_output(out), stages)
        point_latest(out_root, name, out)
    return {**summary, "up_to_date": placed["up_to_date"]}
