"""Stats and the health check of the training loop: step stats summed on the device and written once per
log interval, the check for non-finite losses and collapse, and the rollback to the last checkpoint."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from augment import checkpoint as ckpt
from augment.config import TrainConfig
from augment.errors import AugmentError
from augment.train_state import append_stats, truncate_stats

if TYPE_CHECKING:  # annotations only
    from augment.train_state import StepResult, TrainFiles, TrainState


class TrainingDiverged(AugmentError):
    """Training kept diverging after the allowed number of rollbacks."""


def class_spread(x: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean over classes (with >= 2 samples in the batch) of the RMS distance to the class mean."""
    x = x.detach().float().flatten(1)
    counts = torch.bincount(y, minlength=num_classes).float()
    means = torch.zeros(num_classes, x.shape[1], device=x.device).index_add_(0, y, x) / counts.clamp_min(1)[:, None]
    sq = torch.zeros(num_classes, device=x.device).index_add_(0, y, ((x - means[y]) ** 2).mean(1))
    ok = counts >= 2
    return (sq[ok] / counts[ok]).sqrt().mean() if ok.any() else torch.ones((), device=x.device)


class StatsLog:
    """Step stats summed on the device (no host sync per step), written as one stats.jsonl row per
    log interval; also remembers whether any loss was NaN or infinite for the health check."""

    def __init__(self, path: Path, device: torch.device):
        self.path = path
        self.keys: list[str] | None = None
        self.acc: torch.Tensor | None = None
        self.nonfinite = torch.zeros((), dtype=torch.bool, device=device)
        self.n = 0
        self.t_log = time.perf_counter()

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        if self.keys is None:
            self.keys = list(stats)
            self.acc = torch.zeros(len(self.keys), device=self.nonfinite.device)
        values = torch.stack([stats[k].float() for k in self.keys])
        self.nonfinite |= ~torch.isfinite(values).all()
        self.acc += values
        self.n += 1

    def write_row(self, step: int, batch: int) -> dict:
        now = time.perf_counter()
        values = (self.acc / self.n).tolist()  # the one host sync per log interval
        row = {"step": step, **{k: round(v, 5) for k, v in zip(self.keys, values)},
               "imgs_per_s": round(self.n * batch / max(now - self.t_log, 1e-9), 1)}
        if self.nonfinite.device.type == "cpu":
            row["threads"] = torch.get_num_threads()  # train.threads = 'adaptive' changes it with the load
        append_stats(self.path, row)
        self.acc.zero_()
        self.n, self.t_log = 0, now
        return row

    def reset(self) -> None:
        """After a rollback: forget what the abandoned steps summed."""
        self.nonfinite.zero_()
        self.acc.zero_()
        self.n = 0
        self.restart_clock()

    def restart_clock(self) -> None:
        self.t_log = time.perf_counter()


def diagnose(step: int, log: StatsLog, out: StepResult, tc: TrainConfig, num_classes: int) -> str | None:
    """What is wrong with training now, or None: a non-finite loss since the last check, or (after a
    warm-up) a generator whose per-class spread fell under train.collapse_ratio of the real images'."""
    if bool(log.nonfinite):  # the host sync of the health check
        return "a NaN or infinite loss"
    if step > 2 * tc.health_every:  # a freshly initialised generator is not collapsed, just untrained
        ratio = float(class_spread(out.fake, out.y_fake, num_classes)
                      / class_spread(out.real, out.y_real, num_classes).clamp_min(1e-8))
        if ratio < tc.collapse_ratio:
            return (f"generator collapse (samples of a class spread {ratio:.4f} x as much as real ones, "
                    f"under train.collapse_ratio = {tc.collapse_ratio})")
    return None


def roll_back(st: TrainState, problem: str, tc: TrainConfig, files: TrainFiles, anchor: dict | None,
              device: torch.device) -> None:
    """Restore the last loadable checkpoint (or the in-memory start) with lower learning rates, and log it;
    past train.max_rollbacks, stop with TrainingDiverged naming the settings to change."""
    detected_at, count = st.step, st.rollbacks + 1
    if count > tc.max_rollbacks:
        raise TrainingDiverged(f"Training diverged at step {detected_at} ({problem}) again after {tc.max_rollbacks} "
                               f"rollback(s) with lower learning rates. Try a lower train.lr (it was "
                               f"{tc.lr}; the last try ran at {st.opt_g.param_groups[0]['lr']:.3g}), "
                               "model.spectral_norm = true or another model.loss.")
    target, _ = ckpt.latest_loadable(files.checkpoints, map_location=device)
    st.restore(target if target is not None else anchor)
    st.rollbacks = count  # the restored state carries the older count
    for opt in (st.opt_g, st.opt_d):
        for group in opt.param_groups:
            group["lr"] *= tc.rollback_lr_factor
    truncate_stats(files.stats, st.step)
    append_stats(files.stats, {"step": st.step, "event": "rollback", "detected_at": detected_at, "reason": problem,
                                "lr": st.opt_g.param_groups[0]["lr"], "rollbacks": st.rollbacks})
