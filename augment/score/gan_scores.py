"""Scores from the GAN's own discriminator: auxiliary-class probability and realism."""

from __future__ import annotations

import numpy as np
import torch

from augment.generate import LoadedGAN
from augment.models import get_variant


def gan_scores(gan: LoadedGAN, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1024,
               device: torch.device | str = "cpu") -> dict[str, np.ndarray]:
    """aux_prob: class-head probability of the intended class; realism: sigmoid of the adversarial logit."""
    variant = get_variant(gan.variant)
    aux, real = [], []
    with torch.inference_mode():
        for b in range(0, len(images), batch_size):
            x = images[b:b + batch_size].to(device).float().div_(127.5).sub_(1.0)
            y = labels[b:b + batch_size].to(device)
            probs = variant.class_probs(gan.discriminator, x)
            aux.append(probs.gather(1, y[:, None]).squeeze(1).cpu())
            real.append(torch.sigmoid(gan.discriminator(x)[0].float()).cpu())
    if not aux:
        return {"aux_prob": np.zeros(0), "realism": np.zeros(0)}
    return {"aux_prob": torch.cat(aux).numpy().astype(np.float64), "realism": torch.cat(real).numpy().astype(np.float64)}
