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
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from augment import checkpoint as ckpt
from augment.config import Config, ModelConfig, TrainConfig
from augment.data.batches import BatchSampler
from augment.data.labeled import LabeledImages
from augment.device import ALL_CORES, prepare_device
from augment.diffaugment import diff_augment, parse_policy
from augment.errors import ConfigError
from augment.losses import LOSSES, gradient_penalty, pair_spread_ratio, r1_penalty
from augment.models import StepContext, get_variant
from augment.precision import autocast_for, resolve_precision
from augment.thread_governor import ThreadGovernor
from augment.train_health import StatsLog, TrainingDiverged, diagnose, roll_back, truncate_stats
from augment.train_state import (
    FORMAT,
    ProgressFn,
    QualityFn,
    StepResult,
    TrainFiles,
    TrainResult,
    TrainState,
    build_networks,
    check_resumable,
    data_shape,
    pick_best,
    restore_best_mark,
    save_snapshot,
    training_signature,
)
from augment.variants import rules_for

# what other modules import from here (the loop's own parts live in train_state and train_health)
__all__ = ["FORMAT", "ProgressFn", "QualityFn", "TrainFiles", "TrainResult", "TrainingDiverged", "build_networks",
           "check_batch_fits", "data_shape", "fake_labels", "mode_seeking_weight", "new_state", "pick_best",
           "step_parts", "train", "train_step", "training_signature"]


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
        check_resumable(saved, cfg, data)
        st.restore(saved)
        restore_best_mark(st, files)
    start = st.step
    # the state to roll back to before the first checkpoint exists (kept in memory, never written)
    anchor = copy.deepcopy(st.capture(header)) if saved is None else None
    truncate_stats(files.stats, start)
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
        r1_weight=tc.r1_weight, r1_every=tc.r1_every,
        mode_seeking=mode_seeking_weight(cfg.model, data.channels, data.size))


def mode_seeking_weight(model: ModelConfig, channels: int, size: int) -> float:
    """model.mode_seeking as a number: 'auto' is the variant's declared default (augment.variants; for acgan
    0.1, and 1 for RGB at 64 px or more; docs/benchmarks.md "Mode seeking" and colour) on the 'dcgan'
    backbone, where it was measured, and 0 elsewhere ('classic' is the write-up's recipe; wgan-gp's fakes
    cannot pair)."""
    if model.mode_seeking != "auto":
        return float(model.mode_seeking)
    if model.arch != "dcgan" or model.loss == "wgan-gp":
        return 0.0
    rules = rules_for(model.variant)
    return rules.auto_mode_seeking_rgb64 if channels == 3 and size >= 64 else rules.auto_mode_seeking


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
