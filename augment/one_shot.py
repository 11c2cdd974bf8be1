"""Trainers that fit once instead of running the GAN loop (latent-smote's autoencoder, the mixing variants)
publish their generator the way the loop does: one checkpoint (also best.pt), a sample grid and a
TrainResult, in the folders `train.train` uses, so that generation, scoring and export read them alike."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from augment import checkpoint as ckpt
from augment.atomic import copy_file
from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.grids import save_grid
from augment.train_state import (
    FORMAT,
    GRID_COLUMNS,
    QualityFn,
    TrainFiles,
    TrainResult,
    build_networks,
    data_shape,
    sample_per_class,
)


def publish_generator(G: nn.Module, data: LabeledImages, cfg: Config, run_dir: str | Path, *, step: int,
                      seconds: float, device: torch.device, precision: str,
                      quality: QualityFn | None = None) -> TrainResult:
    """Score G with `quality` (as the loop scores its checkpoints), write its checkpoint as the run's last
    and best, and a grid of samples; the discriminator saved beside it is the variant's untrained one."""
    files = TrainFiles(Path(run_dir))
    files.checkpoints.mkdir(parents=True, exist_ok=True)
    _, D = build_networks(cfg, data_shape(data))
    K, L = data.num_classes, cfg.model.latent_dim
    report = quality(lambda n: sample_per_class(G, K, n, L, cfg.seed + 7, device)) if quality is not None else None
    score = float(report["score"]) if report is not None else None
    state = {"format": FORMAT, "variant": cfg.model.variant, "config": cfg.to_dict(), "fingerprint": data.fingerprint,
             "shape": asdict(data_shape(data)), "class_names": list(data.class_names), "step": step,
             "generator": G.state_dict(), "discriminator": D.state_dict(), "generator_ema": None,
             "best": {"step": step, "score": score}}
    save_grid(sample_per_class(G, K, GRID_COLUMNS, L, cfg.seed + 1, device)[0], GRID_COLUMNS,
              files.samples / f"grid-{step:07d}.png")
    path = ckpt.checkpoint_path(files.checkpoints, step)
    ckpt.save_checkpoint(state, path)
    copy_file(path, files.checkpoints / ckpt.BEST)
    return TrainResult(run_dir=str(run_dir), step=step, best_step=step, best_score=score,
                       best_checkpoint=str(files.checkpoints / ckpt.BEST), last_checkpoint=str(path),
                       seconds=round(seconds, 3), resumed_from=0, device=str(device),
                       batch_size=cfg.train.batch_size, precision=precision)
