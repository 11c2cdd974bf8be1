"""Latent SMOTE (after DeepSMOTE, Dablain et al. 2022): a small convolutional autoencoder trained on every
class, and new images of a class decoded from SMOTE interpolations between its real images' latent codes.

The peer the GAN is measured against: it needs no adversarial training (minutes on two CPU cores), and
its images stay between real images of their class by construction, at the cost of some blur.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from augment.precision import autocast_for


@dataclass
class AutoencoderConfig:
    latent_dim: int = 32
    width: int = 32
    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    k: int = 5  # SMOTE neighbours


class Autoencoder(nn.Module):
    """Two stride-2 convolutions down to a latent vector, and their transposes back to the image size."""

    def __init__(self, channels: int, size: int, latent_dim: int = 32, width: int = 32):
        super().__init__()
        self.size, self.inner = size, (size + 3) // 4
        flat = 2 * width * self.inner * self.inner
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(flat, latent_dim))
        self.decode_in = nn.Sequential(nn.Linear(latent_dim, flat), nn.ReLU())
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, 2, 1))
        self.width = width

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 4 * self.inner:
            x = F.interpolate(x, size=(4 * self.inner, 4 * self.inner), mode="bilinear", align_corners=False)
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.decode_in(z).view(len(z), 2 * self.width, self.inner, self.inner)
        x = torch.sigmoid(self.decoder(h))
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return x


def _to_unit(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    return images.to(device, non_blocking=True).float().div_(255.0)


def train_autoencoder(images: torch.Tensor, labels: torch.Tensor, cfg: AutoencoderConfig, *, seed: int = 0,
                      device: torch.device | str = "cpu", precision: str = "auto") -> Autoencoder:
    """Reconstruction (MSE) on batches drawn class-balanced, so that the tail classes are encoded as well as
    the head; uint8 images (N, C, H, W) stay on the device and are scaled per batch."""
    device = torch.device(device)
    torch.manual_seed(seed)
    model = Autoencoder(images.shape[1], images.shape[-1], cfg.latent_dim, cfg.width).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    data, y = images.to(device), labels.to(device)
    counts = torch.bincount(y).float()
    weights = (1.0 / counts.clamp_min(1))[y]
    gen = torch.Generator(device=device).manual_seed(seed)
    model.train()
    for _ in range(cfg.steps):
        idx = torch.multinomial(weights, cfg.batch_size, replacement=True, generator=gen)
        x = _to_unit(data[idx], device)
        with autocast_for(device, precision):
            recon = model.decode(model.encode(x))
        loss = F.mse_loss(recon.float(), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


@torch.inference_mode()
def encode_all(model: Autoencoder, images: torch.Tensor, device: torch.device | str = "cpu",
               batch_size: int = 1024) -> torch.Tensor:
    device = torch.device(device)
    return torch.cat([model.encode(_to_unit(images[b:b + batch_size], device)).float().cpu()
                      for b in range(0, len(images), batch_size)]) if len(images) else torch.zeros(0)


def smote_codes(codes: np.ndarray, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """n new codes: a random real code moved a uniform fraction of the way to one of its k nearest
    same-class codes. A class with one real code can only repeat it."""
    if len(codes) == 1:
        return np.repeat(codes, n, axis=0)
    kk = min(k, len(codes) - 1)
    d = torch.cdist(torch.from_numpy(codes), torch.from_numpy(codes)).numpy()
    neighbours = np.argsort(d, axis=1)[:, 1:kk + 1]  # column 0 is the code itself
    base = rng.integers(len(codes), size=n)
    other = neighbours[base, rng.integers(kk, size=n)]
    lam = rng.random((n, 1))
    return codes[base] + lam * (codes[other] - codes[base])


@torch.inference_mode()
def generate_latent_smote(model: Autoencoder, images: torch.Tensor, labels: torch.Tensor, counts: dict[int, int],
                          k: int = 5, seed: int = 0, device: torch.device | str = "cpu") -> tuple[torch.Tensor,
                                                                                                torch.Tensor]:
    """counts[c] new uint8 images of class c, decoded from SMOTE between class c's real latent codes."""
    rng = np.random.default_rng(seed)
    codes = encode_all(model, images, device).numpy().astype(np.float64)
    out, out_y = [], []
    for c, n in counts.items():
        if n <= 0:
            continue
        own = codes[labels.numpy() == c]
        if len(own) == 0:
            raise ValueError(f"class {c} has no real images to interpolate between")
        z = torch.from_numpy(smote_codes(own, n, k, rng)).float().to(device)
        x = torch.cat([model.decode(z[b:b + 1024]).float() for b in range(0, n, 1024)])
        out.append((x * 255).round().clamp(0, 255).to(torch.uint8).cpu())
        out_y.append(torch.full((n,), c, dtype=torch.int64))
    if not out:
        return torch.zeros(0, *images.shape[1:], dtype=torch.uint8), torch.zeros(0, dtype=torch.int64)
    return torch.cat(out), torch.cat(out_y)
