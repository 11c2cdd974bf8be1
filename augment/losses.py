"""Adversarial losses on discriminator logits, one small pair of functions each, in a registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

Tensor = torch.Tensor


@dataclass(frozen=True)
class AdversarialLoss:
    """`d(real_logits, fake_logits)` is minimised by the discriminator, `g(fake_logits)` by the generator.

    needs_gp: the training loop adds a gradient penalty on interpolates (WGAN-GP) and takes
    `train.critic_steps` discriminator steps per generator step.
    """

    name: str
    d: Callable[[Tensor, Tensor], Tensor]
    g: Callable[[Tensor], Tensor]
    needs_gp: bool = False


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


def _ls_d(real: Tensor, fake: Tensor) -> Tensor:
    return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake ** 2).mean()


def _ls_g(fake: Tensor) -> Tensor:
    return 0.5 * ((fake - 1) ** 2).mean()


def _hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def _wasserstein_d(real: Tensor, fake: Tensor) -> Tensor:
    return fake.mean() - real.mean()


def _neg_mean_g(fake: Tensor) -> Tensor:
    return -fake.mean()


register_loss(AdversarialLoss("bce", _bce_d, _bce_g))
register_loss(AdversarialLoss("lsgan", _ls_d, _ls_g))
register_loss(AdversarialLoss("hinge", _hinge_d, _neg_mean_g))
register_loss(AdversarialLoss("wgan-gp", _wasserstein_d, _neg_mean_g, needs_gp=True))


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, gen: torch.Generator) -> Tensor:
    """E[(||grad_x critic(x)||_2 - 1)^2] on random interpolates of real and fake (Gulrajani et al. 2017).
    `critic` closes over the conditioning (labels), so the penalty is taken with it."""
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=gen, device=real.device, dtype=real.dtype)
    x = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = critic(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def r1_penalty(critic: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """E[||grad_x critic(x)||^2] at real images (Mescheder et al. 2018): keeps D flat on the data, a
    regulariser that can stand in for spectral norm. `critic` closes over the labels."""
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).float().sum(), x, create_graph=True)
    return grad.float().flatten(1).pow(2).sum(1).mean()


def pair_spread_ratio(fake: Tensor, z: Tensor, half: int) -> Tensor:
    """MSGAN's ratio (Mao et al. 2019): mean |G(z1) - G(z2)| / mean |z1 - z2| over the pairs (i, i + half),
    which share a class. The generator maximises it (through its inverse) so that different noise gives
    different images of one class, not the class's one easiest image."""
    n = fake.shape[0] - half
    d_img = (fake[:n] - fake[half:half + n]).float().abs().mean()
    d_z = (z[:n] - z[half:half + n]).abs().mean()
    return d_img / d_z
