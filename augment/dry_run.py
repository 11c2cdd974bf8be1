"""`augment run --dry-run`: everything a run would check and decide before it starts, and an estimate of
its training time from a few timed steps, with nothing written."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from augment.amount import synthetic_quota
from augment.config import Config
from augment.data.readers import load_dataset
from augment.device import resolve_device
from augment.latent_smote import AutoencoderConfig, train_autoencoder
from augment.models import get_variant
from augment.models.latent_smote import CODE_DIM
from augment.precision import resolve_precision
from augment.run_checks import check_and_plan, check_place, plan_notes
from augment.train import new_state, step_parts, train_step

TIMED_STEPS, WARMUP_STEPS = 5, 2


@dataclass
class DryRun:
    """What a run would do: per class its real images, planned and generated-for synthetic images; the
    device, precision, GANs to train, and the measured seconds per step with the training estimate."""

    source: str
    classes: list[dict]
    device: str
    precision: str
    gans: int
    seconds_per_step: float
    training_seconds: float
    notes: list[str]


def dry_run(source: str, cfg: Config, out: str | Path, inputs: list[Path] | None = None) -> DryRun:
    """Validate the data, the output location and the settings as `augment run` would, time a few
    training steps on the real model and batch, and write nothing."""
    check_place(source, Path(out), inputs or [])
    data = load_dataset(source, cfg.image, cfg.seed, cfg.data.allow_outside_root)
    plan = check_and_plan(data, cfg, Path(out))
    quota = synthetic_quota(plan, data.counts_by_name(), cfg.balance.synthetic_share)
    variant = get_variant(cfg.model.variant)
    gans = 1 if variant.conditional else sum(1 for k in plan.values() if k > 0)
    device = resolve_device(cfg.train.device)
    precision = resolve_precision(device, cfg.train.precision)
    per_step = 0.0 if variant.trainer == "mixing" else _seconds_per_step(data, cfg, device, precision)
    classes = [{"class": n, "real": c, "planned": plan[n], "generated for": quota[n]}
               for n, c in data.counts_by_name().items()]
    return DryRun(data.source, classes, str(device), precision, gans, per_step, per_step * cfg.train.steps * gans,
                  plan_notes(data, cfg, plan))


def _seconds_per_step(data, cfg: Config, device: torch.device, precision: str) -> float:
    """Seconds per generator step of this model and batch on this device, over a few steps after warm-up."""
    if get_variant(cfg.model.variant).trainer == "autoencoder":
        return _seconds_per_autoencoder_step(data, cfg, device, precision)
    state = new_state(cfg, data, device, None)
    parts = step_parts(cfg, data, state, device, precision)
    decay = cfg.train.ema_decay if state.G_ema is not None else None
    for _ in range(WARMUP_STEPS):
        train_step(state, parts, decay)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(TIMED_STEPS):
        train_step(state, parts, decay)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / TIMED_STEPS


def _seconds_per_autoencoder_step(data, cfg: Config, device: torch.device, precision: str) -> float:
    """As `_seconds_per_step`, for latent-smote's autoencoder."""
    marks: dict[int, float] = {}
    ae = AutoencoderConfig(latent_dim=CODE_DIM, width=cfg.model.width, steps=WARMUP_STEPS + TIMED_STEPS,
                           batch_size=cfg.train.batch_size, lr=cfg.train.lr)
    train_autoencoder(data.images, data.labels, ae, seed=cfg.seed, device=device, precision=precision,
                      on_step=lambda step, loss: marks.__setitem__(step, time.perf_counter()))
    return (marks[WARMUP_STEPS + TIMED_STEPS] - marks[WARMUP_STEPS]) / TIMED_STEPS
