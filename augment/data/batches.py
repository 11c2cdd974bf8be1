"""Batches of real images drawn on the training device, from an explicit generator (reproducible)."""

from __future__ import annotations

import torch


class BatchSampler:
    """Indices of real batches drawn on the device: uniformly over images, or over classes first.

    The GAN, the auxiliary classifier and the SmallCNN recipe share it, so 'class-balanced' means
    the same draw everywhere."""

    def __init__(self, labels: torch.Tensor, num_classes: int, balanced: bool, gen: torch.Generator):
        self.labels, self.k, self.balanced, self.gen = labels, num_classes, balanced, gen
        self.order = torch.argsort(labels, stable=True)
        self.counts = torch.bincount(labels, minlength=num_classes)
        self.starts = torch.cumsum(self.counts, 0) - self.counts

    def __call__(self, batch: int) -> torch.Tensor:
        dev = self.labels.device
        if not self.balanced:
            return torch.randint(len(self.labels), (batch,), generator=self.gen, device=dev)
        c = torch.randint(self.k, (batch,), generator=self.gen, device=dev)
        u = torch.rand(batch, generator=self.gen, device=dev)
        pos = (u * self.counts[c]).long().clamp_max_(self.counts[c] - 1)
        return self.order[self.starts[c] + pos]
