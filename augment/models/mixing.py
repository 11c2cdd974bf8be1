"""The mixing variants, 'remix' and 'cutmix' (augment.mixing): real images of the intended class mixed
into real images of other classes, drawn in proportion to class sizes, so that tail images get the head's
context (Remix, Chou et al. 2020; CMO, Park et al. 2022). Registered as variants so that their images are
generated, scored, selected, weighed and exported like the GANs', with both parents in the manifest.

Nothing is trained: the generator holds the training images (uint8, grouped by class) as buffers, and a
latent vector picks, through the normal CDF, the content image, the context image and the mixing draws, so
latent i of a class always gives the same image.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from augment import variants as rules
from augment.mixing import blend
from augment.models.registry import DataShape, NoDiscriminator, Variant, no_class_head, register_variant

if TYPE_CHECKING:  # annotations only; the config layer validates through augment.variants, never these
    from augment.config import ModelConfig

DRAWS = 6  # latent coordinates read: content, context, then blend's four uniforms


class MixingGenerator(nn.Module):
    """G(z, y) -> image in [-1, 1], a real image of class y mixed into a real image of another class."""

    def __init__(self, channels: int, size: int, num_classes: int, kind: str):
        super().__init__()
        self.kind = kind
        self.register_buffer("images", torch.zeros(0, channels, size, size, dtype=torch.uint8))
        self.register_buffer("rows", torch.zeros(0, dtype=torch.long))  # each stored image's row in the data
        self.register_buffer("class_start", torch.zeros(num_classes + 1, dtype=torch.long))

    @torch.no_grad()
    def set_images(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Store the training images grouped by class (stable), with their rows in the dataset."""
        order = torch.argsort(labels, stable=True)
        counts = torch.bincount(labels, minlength=len(self.class_start) - 1)
        device = self.class_start.device
        self.images, self.rows = images[order].to(device), order.to(device)
        self.class_start = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]).to(device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("images", "rows"):  # sized by the training data: take the saved shape
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def parents(self, z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(stored index of the context image, of the content image, the four blend uniforms) for each latent."""
        u = 0.5 * (1 + torch.erf(z[:, :DRAWS].float() / math.sqrt(2)))
        u = u.clamp(0, 1 - 1e-7)
        start, count = self.class_start[y], self.class_start[y + 1] - self.class_start[y]
        content = start + torch.minimum((u[:, 0] * count).long(), count - 1)
        others = len(self.images) - count
        j = torch.minimum((u[:, 1] * others).long(), others - 1)
        context = torch.where(j < start, j, j + count)  # uniform over the rows of every other class
        return context, content, u[:, 2:]

    def provenance(self, z: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per latent: the dataset rows of both parents and the content's share (manifest mix_* columns)."""
        context, content, u = self.parents(z, y)
        share = blend(self.kind, self.images[context], self.images[content], u)[1]
        return {"context_row": self.rows[context], "content_row": self.rows[content], "share": share}

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        context, content, u = self.parents(z, y)
        mixed, _ = blend(self.kind, self.images[context], self.images[content], u)
        return mixed / 127.5 - 1


def _builder(kind: str):
    def build(cfg: ModelConfig, shape: DataShape):
        return MixingGenerator(shape.channels, shape.size, shape.num_classes, kind), NoDiscriminator()
    return build


def critic(D, x, y):
    return D(x)


def _not_adversarial(*args, **kwargs):
    raise RuntimeError("the mixing variants are not trained adversarially (augment.mixing_trainer stores the images)")


REMIX = register_variant(Variant(rules.REMIX, _builder("remix"), _not_adversarial, _not_adversarial, critic,
                                 no_class_head))
CUTMIX = register_variant(Variant(rules.CUTMIX, _builder("cutmix"), _not_adversarial, _not_adversarial, critic,
                                  no_class_head))
