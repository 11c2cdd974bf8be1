"""ACGAN (Odena et al. 2017): a class-conditional generator and a discriminator with an auxiliary class head."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F

from augment import variants as rules
from augment.models.backbone import Discriminator, Generator, apply_spectral_norm, wants_spectral_norm
from augment.models.classic import ClassicDiscriminator, ClassicGenerator
from augment.models.registry import DataShape, Variant, adv_stats, register_variant

if TYPE_CHECKING:  # annotations only; the config layer validates through augment.variants, never these
    from augment.config import ModelConfig


def build(cfg: ModelConfig, shape: DataShape):
    if cfg.arch == "classic":
        return (ClassicGenerator(cfg.latent_dim, shape.num_classes, shape.channels, shape.size),
                ClassicDiscriminator(shape.channels, shape.size, shape.num_classes))
    g = Generator(cfg.latent_dim, shape.num_classes, shape.channels, shape.size, cfg.width, cfg.conditioning,
                  cfg.embed_noise)
    # acgan_projection: the label enters D both ways, the class head and a projection term on the logit.
    d = Discriminator(shape.channels, shape.size, cfg.width, aux_classes=shape.num_classes,
                      conditioning="projection" if cfg.acgan_projection in (True, "auto") else "none",
                      num_classes=shape.num_classes)
    return g, (apply_spectral_norm(d) if wants_spectral_norm(cfg.spectral_norm, rules.ACGAN.auto_spectral_norm) else d)


def d_loss(D, real, y_real, fake, y_fake, ctx):
    """Adversarial term plus cross-entropy of the class head on real images (and, weighted by
    model.aux_fake_weight, on fake images as in the original ACGAN)."""
    n = real.shape[0]
    if getattr(D, "separate_batches", False):  # BatchNorm inside: keep real and fake statistics apart
        (lr, cr), (lf, cf) = D(real, y_real), D(fake, y_fake)
        logits, cls = torch.cat([lr, lf]), torch.cat([cr, cf])
    else:  # the labels reach D's logit only with model.acgan_projection
        logits, cls = D(torch.cat([real, fake]), torch.cat([y_real, y_fake]))
    adv_loss = ctx.adv.d(logits[:n], logits[n:])
    aux_loss = F.cross_entropy(cls[:n], y_real)
    if ctx.aux_fake_weight:
        aux_loss = aux_loss + ctx.aux_fake_weight * F.cross_entropy(cls[n:], y_fake)
    stats = {"d_adv": adv_loss.detach(), "d_aux": aux_loss.detach(), **adv_stats(logits[:n], logits[n:]),
             "aux_acc_real": (cls[:n].argmax(1) == y_real).float().mean().detach()}
    return adv_loss + aux_loss, stats


def g_loss(D, fake, y_fake, ctx):
    """Fool the adversarial head and be classified as the intended class (that term weighted by
    model.g_class_weight: ACGAN's class loss pulls G toward easily separable, less diverse images)."""
    logits, cls = D(fake, y_fake)
    adv_loss = ctx.adv.g(logits)
    aux_loss = ctx.g_class_weight * F.cross_entropy(cls, y_fake)
    stats = {"g_adv": adv_loss.detach(), "g_aux": aux_loss.detach(),
             "aux_acc_fake": (cls.argmax(1) == y_fake).float().mean().detach()}
    return adv_loss + aux_loss, stats


def critic(D, x, y):
    return D(x, y)[0]


def class_probs(D, x):
    return torch.softmax(D(x)[1].float(), dim=1)


def critic_and_probs(D, x, y):
    """One pass: ACGAN's D gives the label to its logit at most (acgan_projection), never to its class head."""
    logits, cls = D(x, y)
    return logits, torch.softmax(cls.float(), dim=1)


ACGAN = register_variant(Variant(rules.ACGAN, build, d_loss, g_loss, critic, class_probs, critic_and_probs))
