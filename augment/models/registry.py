"""Registry of GAN variants: each is a builder plus two loss functions plugged into the one training loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from augment.config import ModelConfig
from augment.losses import AdversarialLoss

Tensor = torch.Tensor
Stats = dict[str, Tensor]


@dataclass(frozen=True)
class DataShape:
    channels: int
    size: int
    num_classes: int


@dataclass(frozen=True)
class Variant:
    """A GAN variant.

    build(model_cfg, shape) -> (generator, discriminator)
    d_loss(D, real, y_real, fake, y_fake, adv) -> (loss, stats): the discriminator's objective
    g_loss(D, fake, y_fake, adv) -> (loss, stats): the generator's objective
    class_probs(D, x) -> (N, K) probabilities of each class, or None where D has no class head
    """

    name: str
    build: Callable[[ModelConfig, DataShape], tuple[nn.Module, nn.Module]]
    d_loss: Callable[..., tuple[Tensor, Stats]]
    g_loss: Callable[..., tuple[Tensor, Stats]]
    class_probs: Callable[[nn.Module, Tensor], Tensor | None]
    losses: tuple[str, ...] = ("bce",)


VARIANTS: dict[str, Variant] = {}


def register_variant(variant: Variant) -> Variant:
    VARIANTS[variant.name] = variant
    return variant


def get_variant(name: str) -> Variant:
    return VARIANTS[name]
