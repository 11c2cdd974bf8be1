"""What a run checks about its data, settings and output before any work: shared by the load stage and
`augment run --dry-run`, so that a dry run refuses exactly what the run would."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from augment.amount import auto_forecast, probe_split
from augment.balance import plan_synthetic
from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.data.readers import input_paths
from augment.errors import ConfigError
from augment.output import check_not_over_inputs, check_output_target
from augment.variants import RULES, rules_for


def check_not_over_data(source: str | LabeledImages, out: Path, inputs: Sequence[Path] = ()) -> None:
    """The output location may not overlap the data's files (for a SPEC) nor any of `inputs` (the config
    file). Checked before anything is written there, the run's lock included."""
    check_not_over_inputs(Path(out), [*(input_paths(source) if isinstance(source, str) else []), *inputs])


def check_and_plan(data: LabeledImages, cfg: Config, out: Path) -> dict[str, int]:
    """Refuse an output that cannot be (re)placed, a plan the data cannot meet, classes too small for
    'auto' to hold an image out, and too few classes for the variant; return the plan."""
    check_output_target(out, cfg.out.overwrite)
    plan = plan_synthetic(data.counts(), data.class_names, cfg.balance.sampling_strategy)
    if cfg.balance.synthetic_share == "auto" and any(plan.values()):
        probe_split(data, cfg.seed)  # refuses classes too small to hold an image out, before any work
    rules = rules_for(cfg.model.variant)
    if data.num_classes < rules.min_classes:
        fits = " or ".join(repr(n) for n, r in RULES.items() if r.min_classes <= data.num_classes)
        raise ConfigError(f"model.variant = {rules.name!r} needs at least {rules.min_classes} classes; "
                          f"'{data.source}' has {data.num_classes}. Use {fits}.")
    return plan


def plan_notes(data: LabeledImages, cfg: Config, plan: dict[str, int]) -> list[str]:
    """What a user should know before the run spends its time: shared by the load stage and --dry-run."""
    if cfg.balance.synthetic_share != "auto" or not any(plan.values()):
        return []
    forecast = auto_forecast(data, plan, cfg.seed)
    return [forecast] if forecast else []
