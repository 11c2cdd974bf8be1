"""CGAN (Mirza & Osindero 2014): the label goes to both networks. The discriminator takes it as one-hot
planes beside the image ('channels') or through a projection term ('projection')."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from augment import variants as rules
from augment.models.backbone import Discriminator, Generator, apply_spectral_norm, wants_spectral_norm
from augment.models.registry import DataShape, Variant, adv_stats, no_class_head, register_variant

if TYPE_CHECKING:  # annotations only; the config layer validates through augment.variants, never these
    from augment.config import ModelConfig


def build(cfg: ModelConfig, shape: DataShape) -> tuple[Generator, Discriminator]:
    g = Generator(cfg.latent_dim, shape.num_classes, shape.channels, shape.size, cfg.width, cfg.conditioning,
                  cfg.embed_noise)
    d = Discriminator(shape.channels, shape.size, cfg.width, conditioning=cfg.d_conditioning,
                      num_classes=shape.num_classes)
    return g, (apply_spectral_norm(d) if wants_spectral_norm(cfg.spectral_norm, rules.CGAN.auto_spectral_norm) else d)


def d_loss(D, real, y_real, fake, y_fake, ctx):
    logits, _ = D(torch.cat([real, fake]), torch.cat([y_real, y_fake]))
    n = real.shape[0]
    loss = ctx.adv.d(logits[:n], logits[n:])
    return loss, {"d_adv": loss.detach(), **adv_stats(logits[:n], logits[n:])}


def g_loss(D, fake, y_fake, ctx):
    loss = ctx.adv.g(D(fake, y_fake)[0])
    return loss, {"g_adv": loss.detach()}


def critic(D, x, y):
    return D(x, y)[0]


CGAN = register_variant(Variant(rules.CGAN, build, d_loss, g_loss, critic, no_class_head))
