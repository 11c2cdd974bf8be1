"""What a run checks about its data, settings and output before any work: shared by the load stage and
`augment run --dry-run`, so that a dry run refuses exactly what the run would."""

from __future__ import annotations

from pathlib import Path

from augment.amount import auto_forecast, probe_split
from augment.balance import plan_synthetic
from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.errors import ConfigError
from augment.models import get_variant
from augment.output import check_output_target


def check_and_plan(data: LabeledImages, cfg: Config, out: Path) -> dict[str, int]:
    """Refuse an output that cannot be (re)placed, a plan the data cannot meet, classes too small for
    'auto' to hold an image out, and too few classes for the variant; return the plan."""
    check_output_target(out, cfg.out.overwrite)
    plan = plan_synthetic(data.counts(), data.class_names, cfg.balance.sampling_strategy)
    if cfg.balance.synthetic_share == "auto" and any(plan.values()):
        probe_split(data, cfg.seed)  # refuses classes too small to hold an image out, before any work
    variant = get_variant(cfg.model.variant)
    if data.num_classes < variant.min_classes:
        raise ConfigError(f"model.variant = {variant.name!r} needs at least {variant.min_classes} classes; "
                          f"'{data.source}' has {data.num_classes}. Use 'acgan', 'cgan' or 'dcgan'.")
    return plan


def plan_notes(data: LabeledImages, cfg: Config, plan: dict[str, int]) -> list[str]:
    """What a user should know before the run spends its time: shared by the load stage and --dry-run."""
    if cfg.balance.synthetic_share != "auto" or not any(plan.values()):
        return []
    forecast = auto_forecast(data, plan, cfg.seed)
    return [forecast] if forecast else []
