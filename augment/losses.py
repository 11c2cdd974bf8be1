"""Adversarial losses on discriminator logits, one small pair of functions each, in a registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn import functional as F

Tensor = torch.Tensor


@dataclass(frozen=True)
class AdversarialLoss:
    """`d(real_logits, fake_logits)` is minimised by the discriminator, `g(fake_logits)` by the generator."""

    name: str
    d: Callable[[Tensor, Tensor], Tensor]
    g: Callable[[Tensor], Tensor]


LOSSES: dict[str, AdversarialLoss] = {}


def register_loss(loss: AdversarialLoss) -> AdversarialLoss:
    LOSSES[loss.name] = loss
    return loss


def _bce_d(real: Tensor, fake: Tensor) -> Tensor:
    return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def _bce_g(fake: Tensor) -> Tensor:
    # Non-saturating: maximise log D(G(z)) rather than minimise log(1 - D(G(z))).
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


register_loss(AdversarialLoss("bce", _bce_d, _bce_g))
