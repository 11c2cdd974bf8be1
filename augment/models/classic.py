"""The architecture of the PyTorch ACGAN write-up ('classic'), with its known bugs left out.

Generator: z * embed(y) -> Linear -> 128 x s/4 x s/4 -> BN -> [Upsample, Conv 128, BN, LeakyReLU]
-> [Upsample, Conv 64, BN, LeakyReLU] -> Conv -> Tanh. Discriminator: four stride-2 conv blocks
(16, 32, 64, 128 channels; LeakyReLU, Dropout 0.25, BatchNorm after the first) and two linear heads
returning logits. Left out: BatchNorm2d(c, 0.8) (that positional 0.8 is eps, not momentum), the
sigmoid/softmax before the losses.
"""

from __future__ import annotations

import torch
from torch import nn

from augment.models.backbone import dcgan_init


class ClassicGenerator(nn.Module):
    def __init__(self, latent_dim: int, num_classes: int, channels: int, size: int):
        super().__init__()
        self.init_size = size // 4
        self.embed = nn.Embedding(num_classes, latent_dim)
        self.project = nn.Linear(latent_dim, 128 * self.init_size ** 2)
        self.blocks = nn.Sequential(
            nn.BatchNorm2d(128),
            nn.Upsample(scale_factor=2), nn.Conv2d(128, 128, 3, 1, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2, True),
            nn.Upsample(scale_factor=2), nn.Conv2d(128, 64, 3, 1, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.2, True),
            nn.Conv2d(64, channels, 3, 1, 1), nn.Tanh())
        dcgan_init(self)
        nn.init.normal_(self.embed.weight, 0.0, 1.0)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.project(z * self.embed(y))
        return self.blocks(h.view(z.shape[0], 128, self.init_size, self.init_size))


class ClassicDiscriminator(nn.Module):
    """BatchNorm inside: real and fake batches go through it separately (see `separate_batches`)."""

    separate_batches = True

    def __init__(self, channels: int, size: int, num_classes: int):
        super().__init__()

        def block(c_in: int, c_out: int, bn: bool = True) -> list[nn.Module]:
            layers = [nn.Conv2d(c_in, c_out, 3, 2, 1), nn.LeakyReLU(0.2, True), nn.Dropout2d(0.25)]
            return layers + ([nn.BatchNorm2d(c_out)] if bn else [])

        self.body = nn.Sequential(*block(channels, 16, bn=False), *block(16, 32), *block(32, 64), *block(64, 128))
        with torch.no_grad():
            self.feature_dim = int(self.body(torch.zeros(2, channels, size, size)).flatten(1).shape[1])
        self.adv = nn.Linear(self.feature_dim, 1)
        self.aux = nn.Linear(self.feature_dim, num_classes)
        dcgan_init(self)

    def features(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(x).flatten(1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.adv(h).squeeze(1), self.aux(h)
