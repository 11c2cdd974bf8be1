"""What a training run is and leaves: its result, its files, the state a checkpoint saves and a rollback
restores, the checkpoint written at each snapshot (quality check, best pick, grid, pruning) and the check
that a run found on disk may be resumed. augment.train's loop and the one-shot trainers share it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from augment import checkpoint as ckpt
from augment.atomic import copy_file, write_text
from augment.config import Config, config_from_dict, train_settings
from augment.data.labeled import LabeledImages
from augment.errors import ConfigError
from augment.grids import save_grid, to_uint8
from augment.models import DataShape, get_variant
from augment.models.backbone import model_config_for

FORMAT = 1
GRID_COLUMNS = 8
# Keys that may change between a run and its resumption (declared `resumable` in augment.config); the rest must match.
RESUMABLE_CHANGES = train_settings("resumable", True)
ProgressFn = Callable[[int, int, dict | None], None]
QualityFn = Callable[[Callable[[int], tuple[torch.Tensor, torch.Tensor]]], dict]


@dataclass(kw_only=True)
class TrainResult:
    """Small, JSON-able summary of a training run (what a Prefect task hands on)."""

    run_dir: str
    step: int
    best_step: int
    best_score: float | None
    best_checkpoint: str
    last_checkpoint: str
    seconds: float
    resumed_from: int
    device: str
    problems: list[str] = field(default_factory=list)
    rollbacks: int = 0
    batch_size: int = 0
    precision: str = "fp32"  # the arithmetic train.precision resolved to on this device
    threads: list = field(default_factory=list)  # CPU threads: [[seconds into training, count], ...] as they changed


def data_shape(data: LabeledImages) -> DataShape:
    return DataShape(channels=data.channels, size=data.size, num_classes=data.num_classes)


def build_networks(cfg: Config, shape: DataShape, saved: dict | None = None) -> tuple[nn.Module, nn.Module]:
    """The configured networks; given a checkpoint to resume (`saved`), networks its weights fit."""
    torch.manual_seed(cfg.seed)  # initial weights depend on the seed only
    model = cfg.model if saved is None else model_config_for(cfg.model, saved["discriminator"])
    return get_variant(cfg.model.variant).build(model, shape)


def training_signature(cfg: Config) -> dict[str, Any]:
    """The parts of the config a checkpoint's weights depend on."""
    d = cfg.to_dict()
    return {"seed": d["seed"], "image": d["image"], "model": d["model"],
            "train": {k: v for k, v in d["train"].items() if k not in RESUMABLE_CHANGES}}


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def sample_per_class(G: nn.Module, num_classes: int, n: int, latent_dim: int, seed: int,
                     device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """n images per class from a fixed noise seed, class-major order; uint8 on the CPU."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn(num_classes * n, latent_dim, generator=gen).to(device)
    y = torch.arange(num_classes).repeat_interleave(n).to(device)
    was_training = G.training
    G.eval()
    with torch.inference_mode():
        x = to_uint8(G(z, y)).cpu()
    G.train(was_training)
    return x, y.cpu()


def pick_best(best: dict, step: int, score: float, tolerance: float) -> dict:
    """The checkpoint to mark best after a quality check at `step`: the latest one scoring within
    `tolerance` of the highest score so far (0: the first to reach the highest). A tolerance
    lets a later checkpoint win within the check's noise, while a late collapse, which costs far more,
    keeps the earlier pick. `best` is {"step", "score", "peak"} ("score": the pick's)."""
    if best.get("score") is None:
        return {"step": step, "score": score, "peak": score}
    before = best.get("peak", best["score"])
    peak = max(before, score)
    if score > before or (tolerance > 0 and score >= peak - tolerance):  # a new high, or close enough to it
        return {"step": step, "score": score, "peak": peak}
    return {**best, "peak": peak}


@dataclass
class TrainState:
    """Everything a checkpoint saves and a rollback restores: networks, optimisers, random generators,
    the step, the best checkpoint so far (`pick_best`'s dict) and how many rollbacks happened."""

    G: nn.Module
    D: nn.Module
    G_ema: nn.Module | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    data_gen: torch.Generator
    noise_gen: torch.Generator
    step: int = 0
    best: dict = field(default_factory=lambda: {"step": 0, "score": None})
    rollbacks: int = 0

    @property
    def generating(self) -> nn.Module:
        """The generator samples come from: the EMA one where training keeps it."""
        return self.G_ema if self.G_ema is not None else self.G

    def capture(self, header: dict) -> dict:
        """The checkpoint dict: `header` (format, config, fingerprint, shape, class names) plus the state."""
        return {
            **header, "step": self.step,
            "generator": self.G.state_dict(), "discriminator": self.D.state_dict(),
            "generator_ema": self.G_ema.state_dict() if self.G_ema is not None else None,
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "rng": {"data": self.data_gen.get_state(), "noise": self.noise_gen.get_state(),
                    "torch": torch.get_rng_state()},
            "best": self.best, "health": {"rollbacks": self.rollbacks}}

    def restore(self, saved: dict) -> None:
        self.G.load_state_dict(saved["generator"])
        self.D.load_state_dict(saved["discriminator"])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(saved["generator_ema"])
        self.opt_g.load_state_dict(saved["opt_g"])
        self.opt_d.load_state_dict(saved["opt_d"])
        self.data_gen.set_state(saved["rng"]["data"].cpu())
        self.noise_gen.set_state(saved["rng"]["noise"].cpu())
        torch.set_rng_state(saved["rng"]["torch"].cpu())
        self.step = int(saved["step"])
        self.best = dict(saved["best"])
        self.rollbacks = int(saved.get("health", {}).get("rollbacks", 0))


@dataclass
class StepResult:
    """The tensors a step leaves for the health check and the stats (no host sync yet)."""

    real: torch.Tensor
    y_real: torch.Tensor
    fake: torch.Tensor
    y_fake: torch.Tensor
    stats: dict[str, torch.Tensor]


@dataclass
class TrainFiles:
    """Where a training run writes: checkpoints/, samples/ and stats.jsonl under its folder."""

    root: Path

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def stats(self) -> Path:
        return self.root / "stats.jsonl"


def save_snapshot(st: TrainState, header: dict, files: TrainFiles, cfg: Config, quality: QualityFn | None) -> Path:
    """At a checkpoint: the quality check and best pick, a sample grid, the checkpoint (best.pt too when
    it is the best), pruning, and the quality row of stats.jsonl."""
    K, L, step = header["shape"]["num_classes"], cfg.model.latent_dim, st.step
    device = next(st.G.parameters()).device
    report = None
    if quality is not None:
        report = quality(lambda n: sample_per_class(st.generating, K, n, L, cfg.seed + 7, device))
        st.best = pick_best(st.best, step, float(report["score"]), cfg.train.best_tolerance)
    else:
        st.best = {"step": step, "score": None}
    x, _ = sample_per_class(st.generating, K, GRID_COLUMNS, L, cfg.seed + 1, device)
    save_grid(x, GRID_COLUMNS, files.samples / f"grid-{step:07d}.png")
    path = ckpt.checkpoint_path(files.checkpoints, step)
    ckpt.save_checkpoint(st.capture(header), path)
    if st.best["step"] == step:
        copy_file(path, files.checkpoints / ckpt.BEST)
    ckpt.prune(files.checkpoints, cfg.train.keep_checkpoints)
    if report is not None:
        append_stats(files.stats, {"step": step, **{f"quality_{k}": v for k, v in report.items()}})
    return path


def restore_best_mark(st: TrainState, files: TrainFiles) -> None:
    """A run stopped between writing a checkpoint and copying it to best.pt (a full disk, a kill) left the
    checkpoint saying it is the best while best.pt is missing or older: finish that copy now, so the
    checkpoint and best.pt always change together as far as a resumed run can tell."""
    best_ckpt = ckpt.checkpoint_path(files.checkpoints, int(st.best["step"]))
    best = files.checkpoints / ckpt.BEST
    if not best_ckpt.exists():
        return
    if not best.exists() or int(ckpt.load_checkpoint(best).get("step", -1)) != int(st.best["step"]):
        copy_file(best_ckpt, best)


def check_resumable(state: dict, cfg: Config, data: LabeledImages) -> None:
    if state.get("format") != FORMAT:
        raise ConfigError(f"Checkpoint format {state.get('format')} is not {FORMAT}; start a new run.")
    if state["fingerprint"] != data.fingerprint:
        raise ConfigError("The unfinished run found here was trained on different data (dataset fingerprint "
                          f"{state['fingerprint'][:12]} vs {data.fingerprint[:12]}). Use another --out, or "
                          "--set out.overwrite=true to discard it.")

    old = training_signature(config_from_dict(state["config"]))
    changed = _diff(old, training_signature(cfg))
    if changed:
        raise ConfigError(f"The unfinished run found here used different settings for {changed}. Use the same "
                          "settings to resume, another --out, or --set out.overwrite=true to discard it.")


def append_stats(path: Path, row: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(row) + "\n")


def truncate_stats(path: Path, step: int) -> None:
    """Drop rows written after the checkpoint we resume from (they will be written again)."""
    if not path.exists():
        return
    rows = [ln for ln in path.read_text().splitlines() if ln.strip()]
    keep = []
    for ln in rows:
        try:
            if json.loads(ln)["step"] <= step:
                keep.append(ln)
        except (ValueError, KeyError):
            continue  # a half-written last line from a killed run
    write_text(path, "".join(ln + "\n" for ln in keep))
