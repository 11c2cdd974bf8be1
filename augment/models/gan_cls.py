"""GAN-cls (Reed et al. 2016): a matching-aware discriminator that judges (image, label) pairs.

Each step scores real/matched pairs as real, and real/mismatched (a label drawn from the other
classes) and fake/matched pairs as fake; the two false terms share the "false" side equally."""

from __future__ import annotations

import torch

from augment import variants as rules
from augment.models import cgan
from augment.models.registry import Variant, adv_stats, no_class_head, register_variant


def mismatched(y: torch.Tensor, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """A label different from y for every sample, uniform over the other classes."""
    shift = torch.randint(1, num_classes, y.shape, generator=gen, device=y.device)
    return (y + shift) % num_classes


def d_loss(D, real, y_real, fake, y_fake, ctx):
    n = real.shape[0]
    y_wrong = mismatched(y_real, ctx.num_classes, ctx.gen)
    logits, _ = D(torch.cat([real, real, fake]), torch.cat([y_real, y_wrong, y_fake]))
    matched, false_side = logits[:n], logits[n:]  # mismatched and fake, n each: equal halves of the false side
    loss = ctx.adv.d(matched, false_side)
    stats = {"d_adv": loss.detach(), **adv_stats(matched, logits[2 * n:]),
             "d_mismatched": logits[n:2 * n].float().mean().detach()}
    return loss, stats


GAN_CLS = register_variant(Variant(rules.GAN_CLS, cgan.build, d_loss, cgan.g_loss, cgan.critic, no_class_head))
