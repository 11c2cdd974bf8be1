"""Scores from the GAN: class probability of the intended class, and the discriminator's realism."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from augment.generate import LoadedGAN
from augment.models import get_variant


def gan_scores(gan: LoadedGAN, images: torch.Tensor, labels: torch.Tensor, aux_classifier: nn.Module | None = None,
               batch_size: int = 256, device: torch.device | str = "cpu") -> dict[str, np.ndarray]:
    """aux_prob: probability of the intended class from the discriminator's class head, or from
    `aux_classifier` for variants without one; realism: sigmoid of the discriminator's logit for the
    image (with its label, for conditional discriminators)."""
    variant = get_variant(gan.variant)
    aux, real = [], []
    with torch.inference_mode():
        for b in range(0, len(images), batch_size):
            x = images[b:b + batch_size].to(device).float().div_(127.5).sub_(1.0).contiguous(
                memory_format=torch.channels_last)  # as the discriminator trained (augment.generate.gan_from_state)
            y = labels[b:b + batch_size].to(device)
            y_d = y if variant.conditional else torch.zeros_like(y)
            logits, probs = variant.critic_with_probs(gan.discriminator, x, y_d)
            if probs is None:
                probs = torch.softmax(aux_classifier(x)[1].float(), dim=1)
            aux.append(probs.gather(1, y[:, None]).squeeze(1).cpu())
            real.append(torch.sigmoid(logits.float()).cpu())
    if not aux:
        return {"aux_prob": np.zeros(0), "realism": np.zeros(0)}
    return {"aux_prob": torch.cat(aux).numpy().astype(np.float64),
            "realism": torch.cat(real).numpy().astype(np.float64)}
