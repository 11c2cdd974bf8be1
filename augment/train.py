"""The training loop: one readable loop for every variant, with checkpoint/resume, EMA, grids and stats.

Order of operations per step: draw a real batch and noise (on the device, from explicit
generators), discriminator update, generator update, EMA update, accumulate stats on the
device. Every `log_every` steps one host sync writes a row of stats.jsonl; every
`checkpoint_every` steps (and at the end) a checkpoint, a sample grid and a quality check.
A resumed run goes through the same code path as a fresh one and, on the CPU, ends with
exactly the same weights as an uninterrupted run.
"""

from __future__ import annotations

import copy
import functools
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from augment import checkpoint as ckpt
from augment.atomic import copy_file, write_text
from augment.config import Config, ModelConfig, TrainConfig, train_settings
from augment.data.batches import BatchSampler
from augment.data.labeled import LabeledImages
from augment.device import ALL_CORES, prepare_device
from augment.diffaugment import diff_augment, parse_policy
from augment.errors import AugmentError, ConfigError
from augment.grids import save_grid, to_uint8
from augment.losses import LOSSES, gradient_penalty, pair_spread_ratio, r1_penalty
from augment.models import DataShape, StepContext, get_variant
from augment.models.backbone import model_config_for
from augment.precision import autocast_for, resolve_precision
from augment.thread_governor import ThreadGovernor
from augment.variants import rules_for

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
class StepParts:
    """What every step uses and no step changes: the variant's losses, the real data on the device and
    its sampler, augmentation, autocast, and the (possibly compiled) networks the step calls."""

    variant: Any
    ctx: StepContext
    images: torch.Tensor  # uint8 on the training device
    labels: torch.Tensor
    sampler: BatchSampler
    augment: Callable[[torch.Tensor], torch.Tensor]
    amp: Any
    G_step: nn.Module
    D_step: nn.Module
    batch: int
    latent: int
    n_critic: int
    gp_weight: float
    r1_weight: float
    r1_every: int
    mode_seeking: float = 0.0


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


def train(data: LabeledImages, cfg: Config, run_dir: str | Path, *, on_progress: ProgressFn | None = None,
          quality: QualityFn | None = None, stop_after: int | None = None) -> TrainResult:
    """Train (or resume) the configured GAN on `data`, writing everything under `run_dir`.

    `quality(sample_fn)` is called at each checkpoint with a function giving n images per
    class; it returns {"score": float, ...} and `pick_best` marks best.pt.
    `stop_after` ends the loop early at that step (for tests that interrupt a run).
    Every `train.health_every` steps (and before each checkpoint) one host sync checks that the
    losses stayed finite and the generator has not collapsed; if not, training rolls back to the
    last checkpoint with the learning rates scaled by `train.rollback_lr_factor`, at most
    `train.max_rollbacks` times, then stops with TrainingDiverged.
    """
    tc, files = cfg.train, TrainFiles(Path(run_dir))
    device = prepare_device(tc)
    precision = resolve_precision(device, tc.precision)  # 'bf16' or 'fp32', and a clear error before any I/O
    # the newest checkpoint is read first, so that a resumed run rebuilds the networks it started with
    saved, problems = ckpt.latest_loadable(files.checkpoints, map_location=device)
    st = new_state(cfg, data, device, saved)
    parts = step_parts(cfg, data, st, device, precision)
    header = {"format": FORMAT, "variant": cfg.model.variant, "config": cfg.to_dict(), "fingerprint": data.fingerprint,
              "shape": asdict(data_shape(data)), "class_names": list(data.class_names)}
    files.checkpoints.mkdir(parents=True, exist_ok=True)  # only now: a config error above leaves nothing on disk
    if saved is not None:
        _check_resumable(saved, cfg, data)
        st.restore(saved)
        _restore_best_mark(st, files)
    start = st.step
    # the state to roll back to before the first checkpoint exists (kept in memory, never written)
    anchor = copy.deepcopy(st.capture(header)) if saved is None else None
    _truncate_stats(files.stats, start)
    log = StatsLog(files.stats, device)
    end = tc.steps if stop_after is None else min(tc.steps, stop_after)
    last_path = ckpt.checkpoint_path(files.checkpoints, start) if saved is not None else None
    mark_step = torch.compiler.cudagraph_mark_step_begin if tc.compile == "reduce-overhead" else (lambda: None)
    st.G.train()
    st.D.train()
    governor = ThreadGovernor.for_training(tc.threads, device, ALL_CORES)  # None unless 'adaptive' on a CPU
    if governor is not None:
        governor.start(torch.get_num_threads())
    t0 = time.perf_counter()
    while st.step < end:
        st.step += 1
        if governor is not None:
            governor.tick()
        mark_step()  # CUDA graphs (compile mode reduce-overhead) may reuse the last step's output memory
        out = train_step(st, parts, tc.ema_decay if st.G_ema is not None else None)
        log.add(out.stats)
        if tc.max_seconds and time.perf_counter() - t0 > tc.max_seconds and st.step < end:
            end = st.step  # out of time: log, checkpoint and stop here
        checkpoint_due = st.step % tc.checkpoint_every == 0 or st.step == end
        if st.step % tc.health_every == 0 or checkpoint_due:
            problem = diagnose(st.step, log, out, tc, data.num_classes)
            if problem is not None:
                roll_back(st, problem, tc, files, anchor, device)
                log.reset()
                continue
        row = log.write_row(st.step, parts.batch) if st.step % tc.log_every == 0 or st.step == end else None
        if checkpoint_due:
            last_path = save_snapshot(st, header, files, cfg, quality)
            log.restart_clock()  # do not count checkpoint time as training time
        if on_progress is not None:
            on_progress(st.step, tc.steps, row)
    if last_path is None:  # nothing to do and nothing on disk: only when steps == 0, which config forbids
        last_path = save_snapshot(st, header, files, cfg, quality)
    return TrainResult(run_dir=str(run_dir), step=max(start, end), best_step=int(st.best["step"]),
                       best_score=st.best["score"], best_checkpoint=str(files.checkpoints / ckpt.BEST),
                       last_checkpoint=str(last_path), seconds=round(time.perf_counter() - t0, 3), resumed_from=start,
                       device=str(device), problems=problems, rollbacks=st.rollbacks, batch_size=parts.batch,
                       precision=precision,
                       threads=governor.history if governor is not None else [[0.0, torch.get_num_threads()]])


def new_state(cfg: Config, data: LabeledImages, device: torch.device, saved: dict | None) -> TrainState:
    """Fresh networks (fitting `saved`'s weights when resuming), EMA copy, optimisers and generators,
    channels-last on the device (+8-15% training images/s on a CPU with mkldnn; what tensor cores want)."""
    tc = cfg.train
    G, D = build_networks(cfg, data_shape(data), saved)
    G = G.to(device, memory_format=torch.channels_last)
    D = D.to(device, memory_format=torch.channels_last)
    cuda = device.type == "cuda"
    if cuda:
        check_batch_fits(G, D, tc.batch_size, cfg.model.latent_dim, device)
        torch.backends.cudnn.benchmark = True  # shapes are fixed, so cuDNN's fastest kernels are found once
    G_ema = copy.deepcopy(G).requires_grad_(False) if tc.ema else None
    return TrainState(G, D, G_ema, make_optimizer(G, tc, cuda), make_optimizer(D, tc, cuda),
                      torch.Generator(device=device).manual_seed(cfg.seed * 2 + 1),
                      torch.Generator(device=device).manual_seed(cfg.seed * 2 + 2))


def step_parts(cfg: Config, data: LabeledImages, st: TrainState, device: torch.device, precision: str) -> StepParts:
    tc = cfg.train
    adv = LOSSES[cfg.model.loss]
    policy = parse_policy(tc.diffaugment)
    images, labels = data.images.to(device), data.labels.to(device)  # uint8 on the device; batches cast there
    G_step, D_step = st.G, st.D  # torch.compile'd views for the step; checkpoints and EMA use the plain modules
    if tc.compile:
        mode = tc.compile if isinstance(tc.compile, str) else None
        G_step, D_step = torch.compile(st.G, mode=mode), torch.compile(st.D, mode=mode)
    return StepParts(
        variant=get_variant(cfg.model.variant),
        ctx=StepContext(adv=adv, gen=st.noise_gen, num_classes=data.num_classes,
                        aux_fake_weight=cfg.model.aux_fake_weight, g_class_weight=cfg.model.g_class_weight),
        images=images, labels=labels,
        sampler=BatchSampler(labels, data.num_classes, tc.real_sampling == "balanced", st.data_gen),
        augment=(lambda x: diff_augment(x, policy, st.noise_gen)) if policy else (lambda x: x),
        amp=autocast_for(device, precision), G_step=G_step, D_step=D_step, batch=tc.batch_size,
        latent=cfg.model.latent_dim, n_critic=tc.critic_steps if adv.needs_gp else 1, gp_weight=tc.gp_weight,
        r1_weight=tc.r1_weight, r1_every=tc.r1_every, mode_seeking=mode_seeking_weight(cfg.model))


def mode_seeking_weight(model: ModelConfig) -> float:
    """model.mode_seeking as a number: 'auto' is the variant's declared default (augment.variants; 0.1 for
    acgan, docs/benchmarks.md "Mode seeking") on the 'dcgan' backbone, where it was measured, and 0 elsewhere
    ('classic' is the write-up's recipe; wgan-gp's fakes cannot pair)."""
    if model.mode_seeking != "auto":
        return float(model.mode_seeking)
    measured = model.arch == "dcgan" and model.loss != "wgan-gp"
    return rules_for(model.variant).auto_mode_seeking if measured else 0.0


def train_step(st: TrainState, p: StepParts, ema_decay: float | None) -> StepResult:
    """One generator step: the discriminator's step(s), the generator's, then the EMA update."""
    real, y_real, fake, y_fake, z, d_loss, d_stats = discriminator_step(st, p)
    g_loss, g_stats = generator_step(st, p, fake, y_fake, z)
    if ema_decay is not None:
        # Warm-up: early on the average would be dominated by the random initial weights.
        _ema_update(st.G_ema, st.G, min(ema_decay, (1 + st.step) / (10 + st.step)))
    return StepResult(real, y_real, fake, y_fake, {"d_loss": d_loss, "g_loss": g_loss, **d_stats, **g_stats})


def discriminator_step(st: TrainState, p: StepParts):
    """`n_critic` discriminator updates on fresh real and fake batches; the last fake keeps its graph
    for the generator step."""
    needs_gp = p.ctx.adv.needs_gp
    for k in range(p.n_critic):
        idx = p.sampler(p.batch)
        real = p.images[idx].float().div_(127.5).sub_(1.0).contiguous(memory_format=torch.channels_last)
        y_real = p.labels[idx]
        z = torch.randn(p.batch, p.latent, generator=st.noise_gen, device=real.device)
        # Fake labels are uniform over classes; with a gradient penalty they pair with the real
        # batch's (class-balanced) labels, so each interpolate has one label.
        paired = bool(p.mode_seeking)
        y_fake = y_real if needs_gp else fake_labels(p.ctx.num_classes, p.batch, paired, st.noise_gen, real.device)
        with p.amp, torch.set_grad_enabled(k == p.n_critic - 1):  # only the last fake feeds the G step
            fake = p.G_step(z, y_fake)
        with p.amp:
            real_in, fake_in = p.augment(real), p.augment(fake.detach())
            d_loss, d_stats = p.variant.d_loss(p.D_step, real_in, y_real, fake_in, y_fake, p.ctx)
            if needs_gp:
                gp = gradient_penalty(functools.partial(_critic, p, y_real), real_in, fake_in, st.noise_gen)
                d_loss = d_loss + p.gp_weight * gp
                d_stats["gp"] = gp.detach()
            if p.r1_weight and k == p.n_critic - 1 and st.step % p.r1_every == 0:
                # Lazy R1 (Mescheder et al. 2018; StyleGAN2): every r1_every steps, scaled to match.
                r1 = r1_penalty(functools.partial(_critic, p, y_real), real_in)
                d_loss = d_loss + (p.r1_weight / 2 * p.r1_every) * r1
        st.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        st.opt_d.step()
    return real, y_real, fake, y_fake, z, d_loss.detach(), d_stats


def fake_labels(num_classes: int, batch: int, paired: bool, gen: torch.Generator,
                device: torch.device) -> torch.Tensor:
    """Uniform labels for a fake batch; `paired` (model.mode_seeking): the second half repeats the first,
    so images i and i + half share a class and the mode-seeking term can compare them."""
    if not paired:
        return torch.randint(num_classes, (batch,), generator=gen, device=device)
    y = torch.randint(num_classes, (_half(batch),), generator=gen, device=device)
    return torch.cat([y, y])[:batch]


def _half(batch: int) -> int:
    return (batch + 1) // 2


def _critic(p: StepParts, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return p.variant.critic(p.D_step, x, y)


def generator_step(st: TrainState, p: StepParts, fake: torch.Tensor, y_fake: torch.Tensor, z: torch.Tensor):
    st.D.requires_grad_(False)
    with p.amp:
        g_loss, g_stats = p.variant.g_loss(p.D_step, p.augment(fake), y_fake, p.ctx)
    if p.mode_seeking:
        ratio = pair_spread_ratio(fake, z, _half(p.batch))
        g_loss = g_loss + p.mode_seeking / (ratio + 1e-5)
        g_stats["g_mode_ratio"] = ratio.detach()
    st.opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    st.opt_g.step()
    st.D.requires_grad_(True)
    return g_loss.detach(), g_stats


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
        _append_stats(self.path, row)
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
        _append_stats(files.stats, {"step": step, **{f"quality_{k}": v for k, v in report.items()}})
    return path


def _restore_best_mark(st: TrainState, files: TrainFiles) -> None:
    """A run stopped between writing a checkpoint and copying it to best.pt (a full disk, a kill) left the
    checkpoint saying it is the best while best.pt is missing or older: finish that copy now, so the
    checkpoint and best.pt always change together as far as a resumed run can tell."""
    best_ckpt = ckpt.checkpoint_path(files.checkpoints, int(st.best["step"]))
    best = files.checkpoints / ckpt.BEST
    if not best_ckpt.exists():
        return
    if not best.exists() or int(ckpt.load_checkpoint(best).get("step", -1)) != int(st.best["step"]):
        copy_file(best_ckpt, best)


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
    _truncate_stats(files.stats, st.step)
    _append_stats(files.stats, {"step": st.step, "event": "rollback", "detected_at": detected_at, "reason": problem,
                                "lr": st.opt_g.param_groups[0]["lr"], "rollbacks": st.rollbacks})


INT_MAX = 2**31 - 1


def largest_activation(G: nn.Module, D: nn.Module, latent_dim: int, device: torch.device) -> int:
    """Elements per image of the largest tensor a layer of G or D produces (measured on two images)."""
    sizes: list[int] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel() // 2)
                                     if isinstance(out, torch.Tensor) else None)
             for net in (G, D) for m in net.modules() if not list(m.children())]
    was = G.training, D.training
    try:
        G.eval(), D.eval()
        with torch.no_grad():
            fake = G(torch.zeros(2, latent_dim, device=device), torch.zeros(2, dtype=torch.long, device=device))
            D(fake, torch.zeros(2, dtype=torch.long, device=device))
    finally:
        for h in hooks:
            h.remove()
        G.train(was[0]), D.train(was[1])
    return max(sizes)


def check_batch_fits(G: nn.Module, D: nn.Module, batch: int, latent_dim: int, device: torch.device) -> None:
    """CUDA kernels such as channels-last upsampling index with 32 bits: refuse a batch whose largest layer
    output would pass 2^31 - 1 elements, before any step runs."""
    per_image = largest_activation(G, D, latent_dim, device)
    if batch * per_image > INT_MAX:
        raise ConfigError(f"train.batch_size = {batch} is too large for this model on CUDA: its largest layer output "
                          f"would hold {batch * per_image:,} elements, over the 2^31 - 1 that CUDA kernels index. "
                          f"Use train.batch_size <= {INT_MAX // per_image}.")


def make_optimizer(net: nn.Module, tc: TrainConfig, cuda: bool) -> torch.optim.Optimizer:
    """Adam (beta1 0.5 by default, as DCGAN) or RMSprop (as the Keras ACGAN write-up); fused on CUDA."""
    kw: dict[str, Any] = {"fused": True} if cuda else {"foreach": True}
    if tc.optimizer == "rmsprop":
        return torch.optim.RMSprop(net.parameters(), lr=tc.lr, **kw)
    return torch.optim.Adam(net.parameters(), lr=tc.lr, betas=(tc.beta1, tc.beta2), **kw)


@torch.no_grad()
def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    ema_p = [p for p in ema.parameters()]
    model_p = [p.detach() for p in model.parameters()]
    torch._foreach_lerp_(ema_p, model_p, 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)


def _check_resumable(state: dict, cfg: Config, data: LabeledImages) -> None:
    if state.get("format") != FORMAT:
        raise ConfigError(f"Checkpoint format {state.get('format')} is not {FORMAT}; start a new run.")
    if state["fingerprint"] != data.fingerprint:
        raise ConfigError("The unfinished run found here was trained on different data (dataset fingerprint "
                          f"{state['fingerprint'][:12]} vs {data.fingerprint[:12]}). Use another --out, or "
                          "--set out.overwrite=true to discard it.")
    from augment.config import config_from_dict

    old = training_signature(config_from_dict(state["config"]))
    changed = _diff(old, training_signature(cfg))
    if changed:
        raise ConfigError(f"The unfinished run found here used different settings for {changed}. Use the same "
                          "settings to resume, another --out, or --set out.overwrite=true to discard it.")


def _append_stats(path: Path, row: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(row) + "\n")


def _truncate_stats(path: Path, step: int) -> None:
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
