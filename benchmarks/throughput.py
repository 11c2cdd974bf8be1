"""Training and generation throughput, FLOPs per training image and the fraction of measured peak.

For each config (`classic`: the PyTorch ACGAN write-up's architecture, 32 px gray, latent 100,
batch 64; `default`: the product's default model at 28 px, batch 64) it runs the real training
loop (`augment.train.train`) on MNIST images and reports the median images/s over log intervals
after a warm-up, the generator's images/s in large batches under inference_mode, the FLOPs of one
full training step (torch.utils.flop_counter over D and G updates) and, from a matmul timed in the
same process on the same device, the fraction of peak the training step reaches.

    python benchmarks/throughput.py [--device cpu|cuda] [--steps 60] [--configs classic,default]
        [--set key=value ...]          (applied to every config, e.g. --set train.compile=true)

How fast a recipe becomes good (rather than how fast it steps) is benchmarks/time_to_quality.py.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from shared_data import MNIST

from augment.config import build_config
from augment.data import LabeledImages
from augment.generate import generate, load_gan
from augment.losses import LOSSES
from augment.models import StepContext, get_variant
from augment.precision import autocast_for, resolve_precision
from augment.train import build_networks, data_shape, train

CONFIGS = {
    # the PyTorch ACGAN write-up: its architecture and hyperparameters (Adam 2e-4, beta1 0.5, batch 64)
    "classic": ["model.arch=classic", "model.latent_dim=100", "image.size=32", "train.batch_size=64", "train.lr=0.0002",
                "train.ema=false"],
    "default": ["image.size=28", "train.batch_size=64"],
    "small": ["image.size=28", "model.width=32", "train.batch_size=64"],
}


def mnist(n: int = 10000) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n images of MNIST's train split (uint8, N x 28 x 28) and their labels."""
    d = np.load(MNIST)
    return torch.from_numpy(d["x_train"][:n]), torch.from_numpy(d["y_train"][:n].astype(np.int64))


def as_dataset(size: int, n: int = 10000) -> LabeledImages:
    x, y = mnist(n)
    if size != 28:
        x = torch.nn.functional.interpolate(x[:, None].float(), size=(size, size), mode="bilinear",
                                            antialias=True).round().clamp(0, 255).to(torch.uint8)[:, 0]
    return LabeledImages(x[:, None].contiguous(), y, [str(i) for i in range(10)], [str(i) for i in range(len(y))])


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work, so that a timer reads the work itself (nothing to wait for on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: torch.device, dtype: torch.dtype) -> float:
    """FLOP/s of a large square matmul on random data (median of 10 after 3 warm-ups)."""
    n = 8192 if device.type == "cuda" else 2048
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    times = []
    for i in range(13):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        if i >= 3:
            times.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(times)


def step_flops(cfg, data: LabeledImages, device: torch.device) -> float:
    """FLOPs of one full training step (D update, then G update), counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    variant = get_variant(cfg.model.variant)
    G, D = build_networks(cfg, data_shape(data))
    G, D = G.to(device), D.to(device)
    B, K = cfg.train.batch_size, data.num_classes
    z = torch.randn(B, cfg.model.latent_dim, device=device)
    y = torch.randint(K, (B,), device=device)
    real = torch.randn(B, data.channels, data.size, data.size, device=device)
    ctx = StepContext(LOSSES[cfg.model.loss], torch.Generator(device=device), K)
    with FlopCounterMode(display=False) as counter:
        fake = G(z, y)
        d_loss, _ = variant.d_loss(D, real, y, fake.detach(), y, ctx)
        d_loss.backward()
        D.requires_grad_(False)
        g_loss, _ = variant.g_loss(D, fake, y, ctx)
        g_loss.backward()
    return float(counter.get_total_flops())


def run_config(name: str, sets: list[str], device: torch.device, steps: int, log_every: int,
               gen_batch: int, gen_per_class: int, compile_generator: bool = False) -> dict:
    cfg = build_config(sets=[*CONFIGS[name], *sets, f"train.device={device.type}", f"train.steps={steps}",
                             f"train.log_every={log_every}", f"train.checkpoint_every={steps}", "train.ema=false"])
    data = as_dataset(cfg.image.size)
    with tempfile.TemporaryDirectory() as tmp:
        result = train(data, cfg, Path(tmp) / "run")
        rows = [json.loads(r) for r in (Path(tmp) / "run" / "stats.jsonl").read_text().splitlines()]
        rates = [r["imgs_per_s"] for r in rows if "imgs_per_s" in r][1:]  # first interval is warm-up
        gan = load_gan(result.last_checkpoint, device)
        if compile_generator:
            gan.generator = torch.compile(gan.generator)
        counts = {c: gen_per_class for c in range(10)}
        precision = cfg.train.precision  # generation in the same arithmetic as training, as the pipeline does
        generate(gan, {0: gen_batch}, seed=0, batch_size=gen_batch, device=device, precision=precision)  # warm-up
        gen_times = []
        for rep in range(3):
            sync(device)
            t = time.perf_counter()
            syn = generate(gan, counts, seed=rep, batch_size=gen_batch, device=device, precision=precision)
            sync(device)
            gen_times.append(time.perf_counter() - t)
        on_device = device_generation_rate(gan, gen_batch, device, precision)
    flops = step_flops(cfg, data, device)
    train_rate = statistics.median(rates)
    return {"config": name, "image": f"{data.size}px x{data.channels}", "batch": cfg.train.batch_size,
            "precision": cfg.train.precision,
            "arch": cfg.model.arch, "width": cfg.model.width, "train_imgs_per_s": train_rate,
            "gen_imgs_per_s": len(syn) / statistics.median(gen_times), "gen_device_imgs_per_s": on_device,
            "flops_per_train_img": flops / cfg.train.batch_size,
            "achieved_flops": flops / cfg.train.batch_size * train_rate}


def device_generation_plan(gen_batch: int, device: torch.device) -> tuple[int, int]:
    """Batch and number of timed batches for the on-device rate: the CPU has no copy to spare, so its
    share of the run stays small."""
    return (gen_batch, 30) if device.type == "cuda" else (min(gen_batch, 512), 3)


def device_generation_rate(gan, gen_batch: int, device: torch.device, precision: str = "auto") -> float:
    """The generator alone: images/s from latents already on the device to uint8 images left there
    (median over `device_generation_plan`'s batches)."""
    from augment.grids import to_uint8

    batch, batches = device_generation_plan(gen_batch, device)
    z = torch.randn(batch, gan.latent_dim, device=device)
    y = torch.arange(batch, device=device) % len(gan.class_names)
    times = []
    with torch.inference_mode(), autocast_for(device, precision):
        for i in range(batches + 3):
            sync(device)
            t = time.perf_counter()
            to_uint8(gan.generator(z, y))
            sync(device)
            if i >= 3:
                times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--configs", default="classic,default")
    p.add_argument("--set", dest="sets", action="append", default=[])
    p.add_argument("--compile-generator", action="store_true", help="torch.compile the generator for generation")
    p.add_argument("--gen-batch", type=int, default=None, help="generation batch (default 4096 CPU, 32768 CUDA)")
    p.add_argument("--gen-per-class", type=int, default=None, help="images per class and run (default 200 CPU, "
                   "100000 CUDA)")
    args = p.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    gen_batch = args.gen_batch or (32768 if cuda else 4096)
    gen_per_class = args.gen_per_class or (100000 if cuda else 200)
    # the step's arithmetic, as training resolves it: bf16 autocast on CUDA and AMX CPUs unless train.precision = fp32
    # (where CUDA convolutions may use TF32); the peak is a matmul in that dtype
    fp32 = resolve_precision(device, build_config(sets=args.sets).train.precision) == "fp32"
    dtype = torch.float32 if fp32 else torch.bfloat16
    peak = matmul_peak(device, dtype)
    name = torch.cuda.get_device_name() if cuda else (platform.processor() or platform.machine())
    tf32 = f"; TF32 matmul {torch.backends.cuda.matmul.allow_tf32}, cuDNN TF32 {torch.backends.cudnn.allow_tf32}" \
        if cuda else ""
    print(f"# device {device} ({name}); threads {torch.get_num_threads()}; torch {torch.__version__}; "
          f"training dtype {'fp32' if fp32 else 'bf16 autocast'}{tf32}; extra settings {args.sets or 'none'}")
    print(f"# measured matmul peak ({str(dtype).split('.')[-1]}): {peak / 1e9:.1f} GFLOP/s")
    print(f"# training: {args.steps} steps, images/s median over {args.steps // args.log_every - 1} log intervals of "
          f"{args.log_every} steps after one warm-up interval; generation: median of 3 runs of "
          f"{gen_per_class * 10} images, batch {gen_batch}, uint8 on the host at the end")
    dev_batch, dev_batches = device_generation_plan(gen_batch, device)
    print(f"# 'gen img/s' ends with the images on the host; 'on device' is the generator alone (latents there, "
          f"uint8 images left there), median of {dev_batches} batches of {dev_batch}"
          f"{'; generator torch.compiled' if args.compile_generator else ''}")
    print(f"{'config':8s} {'image':9s} {'batch':>6s} {'train img/s':>12s} {'gen img/s':>11s} {'on device':>11s} "
          f"{'MFLOP/train img':>16s} {'GFLOP/s':>9s} {'of peak':>8s}")
    for cname in args.configs.split(","):
        r = run_config(cname.strip(), args.sets, device, args.steps, args.log_every, gen_batch, gen_per_class,
                       args.compile_generator)
        print(f"{r['config']:8s} {r['image']:9s} {r['batch']:6d} {r['train_imgs_per_s']:12.1f} "
              f"{r['gen_imgs_per_s']:11.0f} {r['gen_device_imgs_per_s']:11.0f} "
              f"{r['flops_per_train_img'] / 1e6:16.1f} {r['achieved_flops'] / 1e9:9.1f} "
              f"{r['achieved_flops'] / peak:8.1%}", flush=True)


if __name__ == "__main__":
    main()
