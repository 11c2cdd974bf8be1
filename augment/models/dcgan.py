"""DCGAN (Radford et al. 2016), unconditional: with several classes the pipeline trains one per class."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from augment import variants as rules
from augment.models.backbone import Discriminator, Generator, apply_spectral_norm, wants_spectral_norm
from augment.models.registry import DataShape, Variant, adv_stats, no_class_head, register_variant

if TYPE_CHECKING:  # annotations only; the config layer validates through augment.variants, never these
    from augment.config import ModelConfig


def build(cfg: ModelConfig, shape: DataShape) -> tuple[Generator, Discriminator]:
    g = Generator(cfg.latent_dim, 1, shape.channels, shape.size, cfg.width, "none")
    d = Discriminator(shape.channels, shape.size, cfg.width)
    return g, (apply_spectral_norm(d) if wants_spectral_norm(cfg.spectral_norm, rules.DCGAN.auto_spectral_norm) else d)


def d_loss(D, real, y_real, fake, y_fake, ctx):
    n = real.shape[0]
    logits, _ = D(torch.cat([real, fake]))
    loss = ctx.adv.d(logits[:n], logits[n:])
    return loss, {"d_adv": loss.detach(), **adv_stats(logits[:n], logits[n:])}


def g_loss(D, fake, y_fake, ctx):
    loss = ctx.adv.g(D(fake)[0])
    return loss, {"g_adv": loss.detach()}


def critic(D, x, y):
    return D(x)[0]


DCGAN = register_variant(Variant(rules.DCGAN, build, d_loss, g_loss, critic, no_class_head))
