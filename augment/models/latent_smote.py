"""latent-smote (after DeepSMOTE, Dablain et al. 2022): an autoencoder's decoder as the generator, fed with
SMOTE interpolations between real latent codes of the asked-for class. Registered as a variant so that it
is generated from, scored, selected and exported like the GANs; it trains by reconstruction
(augment.latent_smote.train_latent_smote), not by the GAN loop, and has no discriminator.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from augment import variants as rules
from augment.models.registry import DataShape, NoDiscriminator, Variant, no_class_head, register_variant

if TYPE_CHECKING:  # annotations only; the config layer validates through augment.variants, never these
    from augment.config import ModelConfig

CODE_DIM = 32  # the autoencoder's latent code (DeepSMOTE: 300 for 28 px; 32 reconstructs MNIST well)
NEIGHBOURS = 5  # SMOTE's k


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



class LatentSmoteGenerator(nn.Module):
    """G(z, y) -> image in [-1, 1]: z's first three coordinates, through the normal CDF, pick a real code of
    class y, one of its k nearest same-class codes and how far to move toward it (SMOTE), and the decoder
    draws the code. The real codes are buffers, set after training (`set_codes`), so the checkpoint holds
    everything generation needs and latent i of a class always gives the same image."""

    def __init__(self, channels: int, size: int, num_classes: int, width: int, code_dim: int = CODE_DIM):
        super().__init__()
        self.autoencoder = Autoencoder(channels, size, code_dim, width)
        self.register_buffer("codes", torch.zeros(0, code_dim))
        self.register_buffer("neighbours", torch.zeros(0, NEIGHBOURS, dtype=torch.long))
        self.register_buffer("class_start", torch.zeros(num_classes + 1, dtype=torch.long))

    @torch.no_grad()
    def set_codes(self, codes: torch.Tensor, labels: torch.Tensor) -> None:
        """Store the real codes grouped by class with each one's nearest same-class codes (itself where a
        class has a single image)."""
        order = torch.argsort(labels, stable=True)
        codes, labels = codes[order].float(), labels[order]
        counts = torch.bincount(labels, minlength=len(self.class_start) - 1)
        start = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
        neighbours = torch.zeros(len(codes), NEIGHBOURS, dtype=torch.long)
        for c in range(len(counts)):
            lo, hi = int(start[c]), int(start[c + 1])
            if hi - lo == 1:
                neighbours[lo] = lo  # a single image can only repeat itself
            if hi - lo <= 1:
                continue
            d = torch.cdist(codes[lo:hi], codes[lo:hi])
            d.fill_diagonal_(float("inf"))
            k = min(NEIGHBOURS, hi - lo - 1)
            nearest = d.topk(k, largest=False).indices
            neighbours[lo:hi] = lo + nearest.repeat(1, math.ceil(NEIGHBOURS / k))[:, :NEIGHBOURS]
        self.codes, self.neighbours, self.class_start = codes.to(self.codes.device), neighbours.to(
            self.codes.device), start.to(self.codes.device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("codes", "neighbours"):  # sized by the training data: take the saved shape
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        u = 0.5 * (1 + torch.erf(z[:, :3].float() / math.sqrt(2)))
        start, count = self.class_start[y], self.class_start[y + 1] - self.class_start[y]
        base = start + torch.minimum((u[:, 0] * count).long(), count - 1)
        pick = torch.clamp((u[:, 1] * NEIGHBOURS).long(), max=NEIGHBOURS - 1)
        other = self.neighbours[base, pick]
        code = self.codes[base] + u[:, 2:3] * (self.codes[other] - self.codes[base])
        return self.autoencoder.decode(code) * 2 - 1


def build(cfg: ModelConfig, shape: DataShape):
    return LatentSmoteGenerator(shape.channels, shape.size, shape.num_classes, cfg.width), NoDiscriminator()


def _no_adversary(*args, **kwargs):
    raise RuntimeError("latent-smote trains by reconstruction (augment.latent_smote.train_latent_smote), "
                       "not by the GAN loop")


def critic(D, x, y):
    return D(x)


LATENT_SMOTE = register_variant(Variant(rules.LATENT_SMOTE, build, _no_adversary, _no_adversary, critic, no_class_head))
