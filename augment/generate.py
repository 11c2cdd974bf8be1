"""Class-balanced sampling from a checkpoint, reproducible per image.

Image i of class c under seed s always comes from the same latent vector, whatever the
batch size or the order of generation: latents are drawn in chunks of 1024 from a
generator seeded by (s, c, chunk).
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from augment.checkpoint import load_checkpoint
from augment.config import config_from_dict
from augment.grids import to_uint8
from augment.models import DataShape, get_variant

CHUNK = 1024


@dataclass
class Synthetic:
    """Generated candidates: uint8 images (N, C, H, W) with intended class, latent index and round."""

    images: torch.Tensor
    labels: torch.Tensor
    latent_index: torch.Tensor
    rounds: torch.Tensor
    seed: int

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @classmethod
    def empty(cls, channels: int, size: int, seed: int) -> "Synthetic":
        z = torch.zeros(0, dtype=torch.int64)
        return cls(torch.zeros(0, channels, size, size, dtype=torch.uint8), z, z.clone(), z.clone(), seed)

    def concat(self, other: "Synthetic") -> "Synthetic":
        return Synthetic(torch.cat([self.images, other.images]), torch.cat([self.labels, other.labels]),
                         torch.cat([self.latent_index, other.latent_index]), torch.cat([self.rounds, other.rounds]),
                         self.seed)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, x=self.images.numpy(), y=self.labels.numpy(), latent_index=self.latent_index.numpy(),
                     rounds=self.rounds.numpy(), seed=np.array(self.seed))
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "Synthetic":
        with np.load(path, allow_pickle=False) as z:
            return cls(torch.from_numpy(z["x"].copy()), torch.from_numpy(z["y"]), torch.from_numpy(z["latent_index"]),
                       torch.from_numpy(z["rounds"]), int(z["seed"]))


@dataclass
class LoadedGAN:
    generator: nn.Module
    discriminator: nn.Module
    variant: str
    latent_dim: int
    class_names: list[str]
    step: int


def load_gan(path: str | Path, device: torch.device | str = "cpu") -> LoadedGAN:
    """Rebuild the networks from a checkpoint; the generator is the EMA one where training kept it."""
    state = load_checkpoint(Path(path), map_location=device)
    cfg = config_from_dict(state["config"])
    shape = DataShape(**state["shape"])
    G, D = get_variant(cfg.model.variant).build(cfg.model, shape)
    G.load_state_dict(state["generator_ema"] if state.get("generator_ema") is not None else state["generator"])
    D.load_state_dict(state["discriminator"])
    return LoadedGAN(G.to(device).eval(), D.to(device).eval(), cfg.model.variant, cfg.model.latent_dim,
                     list(state["class_names"]), int(state["step"]))


def _chunk_seed(seed: int, cls: int, chunk: int) -> int:
    digest = hashlib.sha256(f"augment:{seed}:{cls}:{chunk}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def latents(seed: int, cls: int, start: int, count: int, dim: int) -> torch.Tensor:
    """Latent vectors start .. start+count-1 of class `cls` (CPU, float32)."""
    out = []
    first, last = start // CHUNK, (start + count - 1) // CHUNK
    for chunk in range(first, last + 1):
        g = torch.Generator().manual_seed(_chunk_seed(seed, cls, chunk))
        z = torch.randn(CHUNK, dim, generator=g)
        lo = max(start - chunk * CHUNK, 0)
        hi = min(start + count - chunk * CHUNK, CHUNK)
        out.append(z[lo:hi])
    return torch.cat(out) if out else torch.zeros(0, dim)


def generate(gan: LoadedGAN, counts: dict[int, int], seed: int, start: dict[int, int] | None = None,
             round_index: int = 0, batch_size: int = 1024, device: torch.device | str = "cpu") -> Synthetic:
    """counts[c] images of each class c, latent indices from start[c] on."""
    device = torch.device(device)
    start = start or {}
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    imgs, labels, idx = [], [], []
    with torch.inference_mode(), amp:
        for c, n in sorted(counts.items()):
            if n <= 0:
                continue
            s = start.get(c, 0)
            z_all = latents(seed, c, s, n, gan.latent_dim)
            for b in range(0, n, batch_size):
                z = z_all[b:b + batch_size].to(device)
                y = torch.full((len(z),), c, dtype=torch.long, device=device)
                imgs.append(to_uint8(gan.generator(z, y)).cpu())
            labels.append(torch.full((n,), c, dtype=torch.long))
            idx.append(torch.arange(s, s + n, dtype=torch.long))
    if not imgs:
        return Synthetic.empty(*_shape_of(gan), seed)
    lab = torch.cat(labels)
    return Synthetic(torch.cat(imgs), lab, torch.cat(idx), torch.full_like(lab, round_index), seed)


def _shape_of(gan: LoadedGAN) -> tuple[int, int]:
    z = torch.zeros(1, gan.latent_dim, device=next(gan.generator.parameters()).device)
    with torch.inference_mode():
        x = gan.generator(z, torch.zeros(1, dtype=torch.long, device=z.device))
    return int(x.shape[1]), int(x.shape[2])
