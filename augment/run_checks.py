"""What a run checks about its data, settings and output before any work: shared by the load stage,
`augment run --dry-run`, the CLI, the flow, `augment export` and GANOverSampler.save, so that every face
refuses exactly the same things (`guarded_lock` is the one entry for a place to write)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from augment.amount import auto_forecast, probe_split
from augment.balance import plan_synthetic
from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.data.readers import input_paths
from augment.errors import ConfigError
from augment.locking import run_lock
from augment.output import check_not_over_inputs, check_output_target, check_writable_location
from augment.variants import RULES, rules_for


def check_not_over_data(source: str | LabeledImages | None, out: Path, inputs: Sequence[Path] = (),
                        flag: str = "--out") -> None:
    """The output location may not overlap the data's files (for a SPEC) nor any of `inputs` (the config
    file, the run an export reads). Checked before anything is written there, the run's lock included."""
    check_not_over_inputs(Path(out), [*(input_paths(source) if isinstance(source, str) else []), *inputs], flag)


def check_place(source: str | LabeledImages | None, target: Path, inputs: Sequence[Path] = (),
                flag: str = "--out") -> None:
    """Every refusal of a place to write that comes before anything is written: over an input, or in a
    folder that cannot be written. `augment run --dry-run` and GANOverSampler.save call it alone."""
    check_not_over_data(source, target, inputs, flag)
    check_writable_location(target, flag)


@contextmanager
def guarded_lock(source: str | LabeledImages | None, target: Path, lock: Path, inputs: Sequence[Path],
                 timeout: float = 0.0, flag: str = "--out") -> Iterator[None]:
    """The one entry for writing at `target` (run, scheduled run, flow, export): `check_place`, the lock's
    own folder writable, then the lock, held while in the block."""
    check_place(source, target, inputs, flag)
    check_writable_location(lock, flag)
    with run_lock(lock, timeout=timeout):
        yield


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
