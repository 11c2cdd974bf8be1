"""Latent SMOTE (after DeepSMOTE, Dablain et al. 2022): a small convolutional autoencoder trained on every
class, and new images of a class decoded from SMOTE interpolations between its real images' latent codes.

The peer the GAN is measured against: it needs no adversarial training (minutes on two CPU cores), and
its images stay between real images of their class by construction, at the cost of some blur.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.device import prepare_device
from augment.models.latent_smote import CODE_DIM, Autoencoder, LatentSmoteGenerator
from augment.one_shot import publish_generator
from augment.precision import autocast_for, resolve_precision
from augment.train_state import TrainFiles, TrainResult


@dataclass
class AutoencoderConfig:
    latent_dim: int = 32
    width: int = 32
    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3


def _to_unit(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    return images.to(device, non_blocking=True).float().div_(255.0)


def train_autoencoder(images: torch.Tensor, labels: torch.Tensor, cfg: AutoencoderConfig, *, seed: int = 0,
                      device: torch.device | str = "cpu", precision: str = "auto", max_seconds: float = 0,
                      on_step: Callable[[int, torch.Tensor], None] | None = None) -> Autoencoder:
    """Reconstruction (MSE) on batches drawn class-balanced, so that the tail classes are encoded as well as
    the head; uint8 images (N, C, H, W) stay on the device and are scaled per batch. Stops after
    `max_seconds` (0: no limit); `on_step(step, loss)` after every step (the loss stays on the device)."""
    device = torch.device(device)
    torch.manual_seed(seed)
    model = Autoencoder(images.shape[1], images.shape[-1], cfg.latent_dim, cfg.width).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    data, y = images.to(device), labels.to(device)
    counts = torch.bincount(y).float()
    weights = (1.0 / counts.clamp_min(1))[y]
    gen = torch.Generator(device=device).manual_seed(seed)
    model.train()
    t0 = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        idx = torch.multinomial(weights, cfg.batch_size, replacement=True, generator=gen)
        x = _to_unit(data[idx], device)
        with autocast_for(device, precision):
            recon = model.decode(model.encode(x))
        loss = F.mse_loss(recon.float(), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if on_step is not None:
            on_step(step, loss.detach())
        if max_seconds and time.perf_counter() - t0 > max_seconds:
            break
    return model.eval()


@torch.inference_mode()
def encode_all(model: Autoencoder, images: torch.Tensor, device: torch.device | str = "cpu",
               batch_size: int = 1024) -> torch.Tensor:
    device = torch.device(device)
    return torch.cat([model.encode(_to_unit(images[b:b + batch_size], device)).float().cpu()
                      for b in range(0, len(images), batch_size)]) if len(images) else torch.zeros(0)


@torch.inference_mode()
def smote_generator(model: Autoencoder, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                    device: torch.device | str = "cpu") -> LatentSmoteGenerator:
    """The latent-smote generator over a trained autoencoder: its decoder, and the real images' codes."""
    G = LatentSmoteGenerator(images.shape[1], images.shape[-1], num_classes, model.width,
                             code_dim=model.encoder[-1].out_features)
    G.autoencoder.load_state_dict(model.state_dict())
    G = G.to(device).eval()
    G.set_codes(encode_all(model, images, device).to(device), labels.to(device))
    return G


@torch.inference_mode()
def generate_latent_smote(model: Autoencoder, images: torch.Tensor, labels: torch.Tensor, counts: dict[int, int],
                          seed: int = 0, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """counts[c] new uint8 images of class c, decoded from SMOTE between class c's real latent codes (the
    variant's generator on seeded latents)."""
    G = smote_generator(model, images, labels, int(labels.max()) + 1, device)
    y = torch.cat([torch.full((n,), c, dtype=torch.int64) for c, n in counts.items() if n > 0] or
                  [torch.zeros(0, dtype=torch.int64)])
    z = torch.randn(len(y), 3, generator=torch.Generator().manual_seed(seed))
    x = torch.cat([G(z[b:b + 1024].to(device), y[b:b + 1024].to(device)).float().cpu()
                   for b in range(0, len(y), 1024)]) if len(y) else torch.zeros(0, *images.shape[1:])
    return ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8), y


def train_latent_smote(data: LabeledImages, cfg: Config, run_dir: str | Path, *, on_progress=None, quality=None,
                       stop_after: int | None = None) -> TrainResult:
    """The latent-smote variant's training, in the GAN loop's place: the autoencoder for train.steps (or
    train.max_seconds), then the real images' codes stored in the generator, one checkpoint (also best.pt),
    a sample grid and stats.jsonl rows, in the folders train() uses. A rerun trains again from scratch
    (minutes; nothing to resume). `quality` scores the checkpoint as the GANs' are scored."""
    tc, files = cfg.train, TrainFiles(Path(run_dir))
    device = prepare_device(tc)
    precision = resolve_precision(device, tc.precision)
    files.checkpoints.mkdir(parents=True, exist_ok=True)
    files.stats.unlink(missing_ok=True)
    steps = tc.steps if stop_after is None else min(tc.steps, stop_after)
    ae_cfg = AutoencoderConfig(latent_dim=CODE_DIM, width=cfg.model.width, steps=steps, batch_size=tc.batch_size,
                               lr=tc.lr)
    clock = {"t": time.perf_counter(), "done": 0}

    def on_step(step: int, loss: torch.Tensor) -> None:
        row = None
        if step % tc.log_every == 0 or step == steps:
            now = time.perf_counter()
            row = {"step": step, "recon_loss": float(loss),  # the host sync, once per log row
                   "imgs_per_s": (step - clock["done"]) * tc.batch_size / max(now - clock["t"], 1e-9)}
            clock.update(t=now, done=step)
            with files.stats.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
        if on_progress is not None:
            on_progress(step, tc.steps, row)

    t0 = time.perf_counter()
    model = train_autoencoder(data.images, data.labels, ae_cfg, seed=cfg.seed, device=device, precision=precision,
                              max_seconds=tc.max_seconds, on_step=on_step)
    trained = clock["done"] if clock["done"] else steps
    G = smote_generator(model, data.images, data.labels, data.num_classes, device)
    return publish_generator(G, data, cfg, run_dir, step=trained, seconds=time.perf_counter() - t0, device=device,
                             precision=precision, quality=quality)
