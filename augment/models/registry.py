"""Registry of GAN variants: each is a builder plus small loss functions plugged into the one training loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from augment.losses import AdversarialLoss
from augment.variants import RULES, VariantRules, declare

if TYPE_CHECKING:  # annotations only: the models read settings, the config layer never imports them
    from augment.config import ModelConfig

Tensor = torch.Tensor
Stats = dict[str, Tensor]


@dataclass(frozen=True)
class DataShape:
    channels: int
    size: int
    num_classes: int


@dataclass
class StepContext:
    """What a variant's loss functions may use besides the networks and the batch."""

    adv: AdversarialLoss
    gen: torch.Generator  # for any random draw (e.g. mismatched labels), so runs stay reproducible
    num_classes: int
    aux_fake_weight: float = 0.0
    g_class_weight: float = 1.0


@dataclass(frozen=True)
class Variant:
    """A variant: its rules (augment.variants: losses, conditional, trainer, 'auto' defaults) and its code.

    build(model_cfg, shape) -> (generator, discriminator)
    d_loss(D, real, y_real, fake, y_fake, ctx) -> (loss, stats): the discriminator's objective
    g_loss(D, fake, y_fake, ctx) -> (loss, stats): the generator's objective
    critic(D, x, y) -> adversarial logits, as the gradient penalty sees them
    class_probs(D, x) -> (N, K) class probabilities from D's own class head, or None (no head:
        the pipeline trains a separate auxiliary classifier on the real images)
    critic_and_probs(D, x, y) -> both of the above from one pass of D, where the class head does not depend
        on the label; None (the default): two passes
    """

    rules: VariantRules
    build: Callable[[ModelConfig, DataShape], tuple[nn.Module, nn.Module]]
    d_loss: Callable[..., tuple[Tensor, Stats]]
    g_loss: Callable[..., tuple[Tensor, Stats]]
    critic: Callable[[nn.Module, Tensor, Tensor], Tensor]
    class_probs: Callable[[nn.Module, Tensor], Tensor | None]
    critic_and_probs: Callable[[nn.Module, Tensor, Tensor], tuple[Tensor, Tensor | None]] | None = None

    @property
    def name(self) -> str:
        return self.rules.name

    @property
    def conditional(self) -> bool:
        return self.rules.conditional

    @property
    def trainer(self) -> str:
        return self.rules.trainer

    @property
    def has_class_head(self) -> bool:
        return self.class_probs is not no_class_head

    def critic_with_probs(self, D: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None]:
        """(critic(D, x, y), class_probs(D, x)): in one pass of D where the variant declares how."""
        if self.critic_and_probs is not None:
            return self.critic_and_probs(D, x, y)
        return self.critic(D, x, y), self.class_probs(D, x)


VARIANTS: dict[str, Variant] = {}


def register_variant(variant: Variant) -> Variant:
    """Register a variant's code and declare its rules, so that the config accepts its name."""
    declare(variant.rules)
    VARIANTS[variant.name] = variant
    return variant


def unregister_variant(name: str) -> None:
    """Remove a variant and its rules (tests that register toy variants tidy up with this)."""
    VARIANTS.pop(name, None)
    RULES.pop(name, None)


def get_variant(name: str) -> Variant:
    return VARIANTS[name]


def no_class_head(D: nn.Module, x: Tensor) -> None:
    return None


def adv_stats(real_logits: Tensor, fake_logits: Tensor) -> Stats:
    return {"d_real": real_logits.float().mean().detach(), "d_fake": fake_logits.float().mean().detach()}


class NoDiscriminator(nn.Module):
    """For variants without a discriminator (latent-smote, the mixing ones): realism comes out as 0.5 (a logit
    of 0)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.zeros(len(x), device=x.device)
