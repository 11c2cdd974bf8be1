"""DCGAN-style generator and discriminator, sized from the image side (8-64 px) and channel count."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:  # annotations only; the config layer validates through augment.variants, never these
    from augment.config import ModelConfig



def layout(size: int) -> tuple[int, int]:
    """(number of 2x up/down-sampling stages, side at the lowest resolution): halve while even and >= 8."""
    n, s = 0, size
    while s % 2 == 0 and s >= 8:
        s //= 2
        n += 1
    return n, s


def widths(width: int, stages: int) -> list[int]:
    """Channels from the lowest resolution up: doubling per stage towards the bottom, capped at 8x."""
    return [width * min(2 ** (stages - j), 8) for j in range(stages + 1)]


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: conv/linear weights ~ N(0, 0.02), norm scales ~ N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """z (and a class label) -> image in [-1, 1].

    conditioning: 'embed_mul' multiplies z by a learned class embedding (PyTorch ACGAN write-up),
    'concat' appends a one-hot label to z (Keras write-up), 'none' is unconditional.
    embed_noise: with 'embed_mul', noise added to the class embedding while training (NoisyTwins' remedy
    for tail classes that collapse to a few images).
    """

    def __init__(self, latent_dim: int, num_classes: int, channels: int, size: int, width: int,
                 conditioning: str = "embed_mul", embed_noise: float = 0.0) -> None:
        super().__init__()
        self.latent_dim, self.num_classes, self.conditioning = latent_dim, num_classes, conditioning
        self.embed_noise = embed_noise  # training only: N(0, sigma^2) on the class embedding (NoisyTwins)
        stages, self.s0 = layout(size)
        ch = widths(width, stages)
        in_dim = latent_dim + (num_classes if conditioning == "concat" else 0)
        self.embed = nn.Embedding(num_classes, latent_dim) if conditioning == "embed_mul" else None
        self.project = nn.Linear(in_dim, ch[0] * self.s0 * self.s0, bias=False)
        self.norm0 = nn.BatchNorm2d(ch[0])
        self.up = nn.Sequential(*[
            nn.Sequential(nn.ConvTranspose2d(ch[j], ch[j + 1], 4, 2, 1, bias=False),
                          nn.BatchNorm2d(ch[j + 1]), nn.ReLU(inplace=True))
            for j in range(stages)])
        self.to_image = nn.Conv2d(ch[-1], channels, 3, 1, 1)
        self.ch0 = ch[0]
        dcgan_init(self)
        if self.embed is not None:  # z * embed(y) must keep z's scale: N(0, 1) as nn.Embedding's own default
            nn.init.normal_(self.embed.weight, 0.0, 1.0)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.conditioning == "embed_mul":
            e = self.embed(y)
            if self.training and self.embed_noise > 0:  # spreads each class's codes so its tail does not collapse
                e = e + self.embed_noise * torch.randn_like(e)
            z = z * e
        elif self.conditioning == "concat":
            z = torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], dim=1)
        h = self.project(z).view(z.shape[0], self.ch0, self.s0, self.s0)
        h = F.relu(self.norm0(h))
        return torch.tanh(self.to_image(self.up(h)))


class Discriminator(nn.Module):
    """(image[, label]) -> (adversarial logit (N,), class logits (N, K) or None).

    aux_classes > 0 adds ACGAN's auxiliary classification head over the same features.
    conditioning (with num_classes) lets the label in: 'channels' appends one-hot label planes to
    the image (the WGAN-GP CGAN write-up), 'projection' adds <embed(y), features> to the logit
    (Miyato & Koyama's projection discriminator), 'none' ignores it.
    """

    def __init__(self, channels: int, size: int, width: int, aux_classes: int = 0,
                 conditioning: str = "none", num_classes: int = 0) -> None:
        super().__init__()
        self.conditioning, self.num_classes = conditioning, num_classes
        stages, s0 = layout(size)
        ch = list(reversed(widths(width, stages)))  # full resolution first
        in_ch = channels + (num_classes if conditioning == "channels" else 0)
        self.stem = nn.Sequential(nn.Conv2d(in_ch, ch[0], 3, 1, 1), nn.LeakyReLU(0.2, inplace=True))
        self.down = nn.Sequential(*[
            nn.Sequential(nn.Conv2d(ch[j], ch[j + 1], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True))
            for j in range(stages)])
        self.feature_dim = ch[-1] * s0 * s0
        self.adv = nn.Linear(self.feature_dim, 1)
        self.aux = nn.Linear(self.feature_dim, aux_classes) if aux_classes else None
        self.embed = nn.Embedding(num_classes, self.feature_dim) if conditioning == "projection" else None
        dcgan_init(self)

    def features(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.conditioning == "channels":
            planes = F.one_hot(y, self.num_classes).to(x.dtype)[:, :, None, None]
            x = torch.cat([x, planes.expand(-1, -1, x.shape[2], x.shape[3])], dim=1)
        return self.down(self.stem(x)).flatten(1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.features(x, y)
        logit = self.adv(h).squeeze(1)
        if self.embed is not None and y is not None:  # without a label (class_probs) only the class head is read
            logit = logit + (self.embed(y) * h).sum(1)
        return logit, (self.aux(h) if self.aux is not None else None)


def wants_spectral_norm(setting: bool | str, auto: bool) -> bool:
    """model.spectral_norm: true/false as given; 'auto' takes the variant's own default, on for the
    conditional variants: without it cgan learned the label slowly, and acgan collapsed on the bars
    of the conditional-control test and read 0.63 vs 0.83 with it on MNIST-LT (see README)."""
    return auto if setting == "auto" else bool(setting)


def has_spectral_norm(discriminator_state: dict) -> bool:
    """Whether a saved discriminator was built with spectral norm (its weights are parametrised)."""
    return any(".parametrizations." in k for k in discriminator_state)


def has_projection(discriminator_state: dict) -> bool:
    """Whether a saved discriminator takes the label by projection (it has the label embedding `embed`)."""
    return any(k.startswith("embed.") for k in discriminator_state)


def model_config_for(cfg: ModelConfig, discriminator_state: dict) -> ModelConfig:
    """The model settings that rebuild a saved discriminator: what an 'auto' meant is read from the
    weights (spectral norm: 'auto' meant off for acgan in older checkpoints; acgan's projection term:
    checkpoints written before it existed have none)."""
    if cfg.spectral_norm == "auto":
        cfg = dataclasses.replace(cfg, spectral_norm=has_spectral_norm(discriminator_state))
    if cfg.acgan_projection == "auto" and cfg.variant == "acgan":
        cfg = dataclasses.replace(cfg, acgan_projection=has_projection(discriminator_state))
    return cfg


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation of every conv, linear and embedding weight (Miyato et al. 2018)."""
    from torch.nn.utils.parametrizations import spectral_norm

    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            spectral_norm(m)
    return module
