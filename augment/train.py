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
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from augment import checkpoint as ckpt
from augment.config import Config, TrainConfig
from augment.cpu_memory import keep_freed_memory
from augment.data.labeled import LabeledImages
from augment.errors import AugmentError, ConfigError
from augment.grids import save_grid, to_uint8
from augment.diffaugment import diff_augment, parse_policy
from augment.losses import LOSSES, gradient_penalty
from augment.models import DataShape, StepContext, get_variant
from augment.models.backbone import model_config_for
from augment.precision import autocast_for, resolve_precision

FORMAT = 1
GRID_COLUMNS = 8
# Keys that may change between a run and its resumption; everything else must match.
RESUMABLE_CHANGES = {"steps", "checkpoint_every", "log_every", "keep_checkpoints", "device", "threads",
                     "max_seconds", "aux_steps", "compile", "batch_size", "health_every", "max_rollbacks",
                     "precision", "keep_cpu_memory", "best_tolerance"}

ProgressFn = Callable[[int, int, dict | None], None]
QualityFn = Callable[[Callable[[int], tuple[torch.Tensor, torch.Tensor]]], dict]


@dataclass
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


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is available here. Use 'auto' or 'cpu'.")
    return torch.device(name)


def compute_device(tc: TrainConfig) -> torch.device:
    """The device train.device names, ready to compute on: on the CPU, freed memory stays in the process
    (train.keep_cpu_memory), so training, generation and scoring steps do not fault their pages in again."""
    device = resolve_device(tc.device)
    if device.type == "cpu" and tc.keep_cpu_memory:
        keep_freed_memory()
    return device


def data_shape(data: LabeledImages) -> DataShape:
    return DataShape(channels=data.channels, size=data.size, num_classes=data.num_classes)


def build_networks(cfg: Config, shape: DataShape, saved: dict | None = None) -> tuple[nn.Module, nn.Module]:
    """The configured networks; given a checkpoint to resume (`saved`), networks its weights fit."""
    torch.manual_seed(cfg.seed)  # initial weights depend on the seed only
    model = cfg.model if saved is None else model_config_for(cfg.model, saved["discriminator"])
    return get_variant(cfg.model.variant).build(model, shape)


class BatchSampler:
    """Indices of real batches drawn on the device: uniformly over images, or over classes first."""

    def __init__(self, labels: torch.Tensor, num_classes: int, balanced: bool, gen: torch.Generator):
        self.labels, self.k, self.balanced, self.gen = labels, num_classes, balanced, gen
        self.order = torch.argsort(labels, stable=True)
        self.counts = torch.bincount(labels, minlength=num_classes)
        self.starts = torch.cumsum(self.counts, 0) - self.counts

    def __call__(self, batch: int) -> torch.Tensor:
        dev = self.labels.device
        if not self.balanced:
            return torch.randint(len(self.labels), (batch,), generator=self.gen, device=dev)
        c = torch.randint(self.k, (batch,), generator=self.gen, device=dev)
        u = torch.rand(batch, generator=self.gen, device=dev)
        pos = (u * self.counts[c]).long().clamp_max_(self.counts[c] - 1)
        return self.order[self.starts[c] + pos]


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
    tc: TrainConfig = cfg.train
    run_dir = Path(run_dir)
    ckpt_dir, grid_dir = run_dir / "checkpoints", run_dir / "samples"
    stats_path = run_dir / "stats.jsonl"
    device = compute_device(tc)
    precision = resolve_precision(device, tc.precision)  # 'bf16' or 'fp32', and a clear error before any I/O
    amp = autocast_for(device, precision)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    cuda = device.type == "cuda"
    variant = get_variant(cfg.model.variant)
    adv = LOSSES[cfg.model.loss]
    shape = data_shape(data)

    # the newest checkpoint is read first, so that a resumed run rebuilds the networks it started with
    state, problems = ckpt.latest_loadable(ckpt_dir, map_location=device)
    G, D = build_networks(cfg, shape, state)
    # channels-last on both devices: +8-15% training images/s on this CPU (mkldnn), and the layout
    # tensor cores want on CUDA
    G = G.to(device, memory_format=torch.channels_last)
    D = D.to(device, memory_format=torch.channels_last)
    if cuda:
        check_batch_fits(G, D, tc.batch_size, cfg.model.latent_dim, device)
        torch.backends.cudnn.benchmark = True  # shapes are fixed, so cuDNN's fastest kernels are found once
    G_ema = copy.deepcopy(G).requires_grad_(False) if tc.ema else None
    opt_g, opt_d = make_optimizer(G, tc, cuda), make_optimizer(D, tc, cuda)
    # torch.compile'd views for the step; checkpoints and EMA use the plain modules they wrap
    G_step, D_step = (G, D)
    if tc.compile:
        mode = tc.compile if isinstance(tc.compile, str) else None
        G_step, D_step = torch.compile(G, mode=mode), torch.compile(D, mode=mode)
    data_gen = torch.Generator(device=device).manual_seed(cfg.seed * 2 + 1)
    noise_gen = torch.Generator(device=device).manual_seed(cfg.seed * 2 + 2)

    images = data.images.to(device)  # uint8 on the training device; batches are cast there
    labels = data.labels.to(device)
    sampler = BatchSampler(labels, shape.num_classes, tc.real_sampling == "balanced", data_gen)
    best: dict = {"step": 0, "score": None}
    health = {"rollbacks": 0}

    def capture(step: int) -> dict:
        return {
            "format": FORMAT, "step": step, "variant": cfg.model.variant, "config": cfg.to_dict(),
            "fingerprint": data.fingerprint, "shape": asdict(shape), "class_names": list(data.class_names),
            "generator": G.state_dict(), "discriminator": D.state_dict(),
            "generator_ema": G_ema.state_dict() if G_ema is not None else None,
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "rng": {"data": data_gen.get_state(), "noise": noise_gen.get_state(), "torch": torch.get_rng_state()},
            "best": best, "health": dict(health)}

    def restore(state: dict) -> int:
        nonlocal best, health
        G.load_state_dict(state["generator"])
        D.load_state_dict(state["discriminator"])
        if G_ema is not None:
            G_ema.load_state_dict(state["generator_ema"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        data_gen.set_state(state["rng"]["data"].cpu())
        noise_gen.set_state(state["rng"]["noise"].cpu())
        torch.set_rng_state(state["rng"]["torch"].cpu())
        best, health = dict(state["best"]), dict(state.get("health", {"rollbacks": 0}))
        return int(state["step"])

    ckpt_dir.mkdir(parents=True, exist_ok=True)  # only now: a config error above leaves nothing on disk
    start = 0
    if state is not None:
        _check_resumable(state, cfg, data)
        start = restore(state)
    # the state to roll back to before the first checkpoint exists (kept in memory, never written)
    anchor = copy.deepcopy(capture(start)) if state is None else None
    _truncate_stats(stats_path, start)

    B, L, K = tc.batch_size, cfg.model.latent_dim, shape.num_classes
    policy = parse_policy(tc.diffaugment)
    aug = (lambda x: diff_augment(x, policy, noise_gen)) if policy else (lambda x: x)
    ctx = StepContext(adv=adv, gen=noise_gen, num_classes=K, aux_fake_weight=cfg.model.aux_fake_weight)
    n_critic = tc.critic_steps if adv.needs_gp else 1
    end = tc.steps if stop_after is None else min(tc.steps, stop_after)
    keys: list[str] | None = None
    acc: torch.Tensor | None = None
    nonfinite = torch.zeros((), dtype=torch.bool, device=device)
    n_acc, t_log, t0 = 0, time.perf_counter(), time.perf_counter()
    last_path = ckpt.checkpoint_path(ckpt_dir, start) if state is not None else None

    def snapshot(step: int) -> Path:
        nonlocal best
        gen_model = G_ema if G_ema is not None else G
        report = None
        if quality is not None:
            report = quality(lambda n: sample_per_class(gen_model, K, n, L, cfg.seed + 7, device))
            best = pick_best(best, step, float(report["score"]), tc.best_tolerance)
        else:
            best = {"step": step, "score": None}
        x, _ = sample_per_class(gen_model, K, GRID_COLUMNS, L, cfg.seed + 1, device)
        save_grid(x, GRID_COLUMNS, grid_dir / f"grid-{step:07d}.png")
        path = ckpt.checkpoint_path(ckpt_dir, step)
        ckpt.save_checkpoint(capture(step), path)
        if best["step"] == step:
            ckpt.copy_atomic(path, ckpt_dir / ckpt.BEST)
        ckpt.prune(ckpt_dir, tc.keep_checkpoints)
        if report is not None:
            _append_stats(stats_path, {"step": step, **{f"quality_{k}": v for k, v in report.items()}})
        return path

    def diagnose(step: int, fake: torch.Tensor, y_fake: torch.Tensor, real: torch.Tensor,
                 y_real: torch.Tensor) -> str | None:
        if bool(nonfinite):  # the host sync of the health check
            return "a NaN or infinite loss"
        if step > 2 * tc.health_every:  # a freshly initialised generator is not collapsed, just untrained
            ratio = float(class_spread(fake, y_fake, K) / class_spread(real, y_real, K).clamp_min(1e-8))
            if ratio < tc.collapse_ratio:
                return (f"generator collapse (samples of a class spread {ratio:.4f} x as much as real ones, "
                        f"under train.collapse_ratio = {tc.collapse_ratio})")
        return None

    def roll_back(step: int, problem: str) -> int:
        count = health["rollbacks"] + 1
        if count > tc.max_rollbacks:
            raise TrainingDiverged(f"Training diverged at step {step} ({problem}) again after {tc.max_rollbacks} "
                                   f"rollback(s) with lower learning rates. Try a lower train.lr (it was "
                                   f"{tc.lr}; the last try ran at {opt_g.param_groups[0]['lr']:.3g}), "
                                   "model.spectral_norm = true or another model.loss.")
        target, _ = ckpt.latest_loadable(ckpt_dir, map_location=device)
        to = restore(target if target is not None else anchor)
        health["rollbacks"] = count  # the restored state carries the older count
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] *= tc.rollback_lr_factor
        _truncate_stats(stats_path, to)
        _append_stats(stats_path, {"step": to, "event": "rollback", "detected_at": step, "reason": problem,
                                   "lr": opt_g.param_groups[0]["lr"], "rollbacks": health["rollbacks"]})
        return to

    G.train()
    D.train()
    step = start
    mark_step = torch.compiler.cudagraph_mark_step_begin if tc.compile == "reduce-overhead" else (lambda: None)
    while step < end:
        step += 1
        mark_step()  # CUDA graphs (compile mode reduce-overhead) may reuse the last step's output memory
        for k in range(n_critic):
            idx = sampler(B)
            real = images[idx].float().div_(127.5).sub_(1.0).contiguous(memory_format=torch.channels_last)
            y_real = labels[idx]
            z = torch.randn(B, L, generator=noise_gen, device=device)
            # Fake labels are uniform over classes; with a gradient penalty they pair with the real
            # batch's (class-balanced) labels, so each interpolate has one label.
            y_fake = y_real if adv.needs_gp else torch.randint(K, (B,), generator=noise_gen, device=device)
            with amp, torch.set_grad_enabled(k == n_critic - 1):  # only the last fake feeds the G step
                fake = G_step(z, y_fake)
            with amp:
                real_in, fake_in = aug(real), aug(fake.detach())
                d_loss, d_stats = variant.d_loss(D_step, real_in, y_real, fake_in, y_fake, ctx)
                if adv.needs_gp:
                    gp = gradient_penalty(lambda x: variant.critic(D_step, x, y_real), real_in, fake_in, noise_gen)
                    d_loss = d_loss + tc.gp_weight * gp
                    d_stats["gp"] = gp.detach()
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()

        D.requires_grad_(False)
        with amp:
            g_loss, g_stats = variant.g_loss(D_step, aug(fake), y_fake, ctx)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)

        if G_ema is not None:
            # Warm-up: early on the average would be dominated by the random initial weights.
            _ema_update(G_ema, G, min(tc.ema_decay, (1 + step) / (10 + step)))

        stats = {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), **d_stats, **g_stats}
        if keys is None:
            keys = list(stats)
            acc = torch.zeros(len(keys), device=device)
        values = torch.stack([stats[k].float() for k in keys])
        nonfinite |= ~torch.isfinite(values).all()
        acc += values
        n_acc += 1

        if tc.max_seconds and time.perf_counter() - t0 > tc.max_seconds and step < end:
            end = step  # out of time: log, checkpoint and stop here
        checkpoint_due = step % tc.checkpoint_every == 0 or step == end
        if step % tc.health_every == 0 or checkpoint_due:
            problem = diagnose(step, fake, y_fake, real, y_real)
            if problem is not None:
                step = roll_back(step, problem)
                nonfinite.zero_()
                acc.zero_()
                n_acc, t_log = 0, time.perf_counter()
                continue
        row = None
        if step % tc.log_every == 0 or step == end:
            now = time.perf_counter()
            values = (acc / n_acc).tolist()  # the one host sync per log interval
            row = {"step": step, **{k: round(v, 5) for k, v in zip(keys, values)},
                   "imgs_per_s": round(n_acc * B / max(now - t_log, 1e-9), 1)}
            _append_stats(stats_path, row)
            acc.zero_()
            n_acc, t_log = 0, now
        if checkpoint_due:
            last_path = snapshot(step)
            t_log = time.perf_counter()  # do not count checkpoint time as training time
        if on_progress is not None:
            on_progress(step, tc.steps, row)

    if last_path is None:  # nothing to do and nothing on disk: only when steps == 0, which config forbids
        last_path = snapshot(start)
    best_path = ckpt_dir / ckpt.BEST
    return TrainResult(str(run_dir), max(start, end), int(best["step"]), best["score"], str(best_path),
                       str(last_path), round(time.perf_counter() - t0, 3), start, str(device), problems,
                       health["rollbacks"], B, precision)


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
    ckpt.atomic_write_bytes(path, lambda fh: fh.write("".join(ln + "\n" for ln in keep).encode()))
