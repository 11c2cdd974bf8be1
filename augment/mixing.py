"""Synthetic images made by mixing real ones, written to disk like the GAN's: head context with tail
content, labelled as the tail class (Remix, Chou et al. 2020; CMO, Park et al. 2022), and the pure-noise
control that any synthetic source has to beat (OPeN, Zaken et al. 2022).

Each image keeps both parents: `context` (the real image the background comes from, drawn in proportion
to the classes' sizes, so mostly from the head) and `content` (a real image of the target class), and
`content_share`, the share of the content image in the result (pixels for 'remix', area for 'cutmix').
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

MIX_KINDS = ("remix", "cutmix", "noise")
REMIX_SHARE = (0.55, 0.9)  # the content (tail) image's weight in a remix: above half, so the tail label holds
CUTMIX_AREA = (0.5, 0.8)  # the share of the image area the tail patch covers in a cutmix paste


@dataclass
class Mixed:
    """Mixed images (uint8, N x C x H x W), their labels (the content's class) and their parents' rows
    in the real set (-1 where there is none: a noise image has no parent)."""

    images: np.ndarray
    labels: np.ndarray
    context: np.ndarray
    content: np.ndarray
    content_share: np.ndarray


def mix(kind: str, x: np.ndarray, y: np.ndarray, quota: dict[int, int], seed: int) -> Mixed:
    """`quota[c]` images of class c made from the real images x (uint8 N x C x H x W), labels y: 'remix'
    (pixel blend), 'cutmix' (a tail patch pasted into a head image) or 'noise' (Gaussian noise with the
    real images' per-channel mean and std: the control). Seeded: the same inputs give the same images."""
    if kind not in MIX_KINDS:
        raise ValueError(f"unknown mixing kind {kind!r}; use one of {MIX_KINDS}")
    rng = np.random.default_rng(seed)
    targets = np.concatenate([np.full(n, c, np.int64) for c, n in sorted(quota.items()) if n > 0] or
                             [np.zeros(0, np.int64)])
    if kind == "noise":
        return _noise(x, targets, rng)
    content = np.array([rng.choice(np.flatnonzero(y == c)) for c in targets], dtype=np.int64)
    context = _context_rows(y, targets, rng)
    images, share = blend(kind, torch.from_numpy(x[context]), torch.from_numpy(x[content]),
                          torch.from_numpy(rng.random((len(targets), 4))))
    return Mixed(images.round().clamp(0, 255).to(torch.uint8).numpy(), targets, context, content,
                 share.double().numpy())


def blend(kind: str, context: torch.Tensor, content: torch.Tensor,
          u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The one mixing operation (the mixing variants' generator and `mix` both call it): context and content
    images (N, C, H, W, any dtype) and four uniforms per image -> (float images on the same scale, the
    content's share). remix: u0 sets the content's pixel weight in REMIX_SHARE; cutmix: u0 the box's area
    in CUTMIX_AREA, u1 its aspect, u2 and u3 where it sits."""
    context, content, u = context.float(), content.float(), u.float().to(content.device)
    if kind == "remix":
        share = REMIX_SHARE[0] + u[:, 0] * (REMIX_SHARE[1] - REMIX_SHARE[0])
        w = share.view(-1, 1, 1, 1)
        return w * content + (1 - w) * context, share
    if kind != "cutmix":
        raise ValueError(f"unknown blend {kind!r}; use 'remix' or 'cutmix'")
    h, w = content.shape[-2:]
    area = (CUTMIX_AREA[0] + u[:, 0] * (CUTMIX_AREA[1] - CUTMIX_AREA[0])) * h * w
    aspect = torch.exp(math.log(0.75) + u[:, 1] * math.log(16 / 9))
    bh = torch.sqrt(area * aspect).round().clamp(1, h)
    bw = torch.sqrt(area / aspect).round().clamp(1, w)
    top = torch.minimum(torch.floor(u[:, 2] * (h - bh + 1)), h - bh)
    left = torch.minimum(torch.floor(u[:, 3] * (w - bw + 1)), w - bw)
    rows = torch.arange(h, device=content.device).view(1, h, 1)
    cols = torch.arange(w, device=content.device).view(1, 1, w)
    inside = ((rows >= top.view(-1, 1, 1)) & (rows < (top + bh).view(-1, 1, 1))
              & (cols >= left.view(-1, 1, 1)) & (cols < (left + bw).view(-1, 1, 1)))
    return torch.where(inside.unsqueeze(1), content, context), bh * bw / (h * w)


def _context_rows(y: np.ndarray, targets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each target class, a real row of another class, drawn uniformly over the images (so in
    proportion to class sizes: the head gives most of the context, as CMO's background sampler)."""
    rows = np.empty(len(targets), np.int64)
    for c in np.unique(targets):
        where = np.flatnonzero(targets == c)
        others = np.flatnonzero(y != c)
        if len(others) == 0:
            raise ValueError("mixing needs at least two classes: every real image is of the target class")
        rows[where] = rng.choice(others, size=len(where))
    return rows


def _noise(x: np.ndarray, targets: np.ndarray, rng: np.random.Generator) -> Mixed:
    mean = x.mean(axis=(0, 2, 3)).reshape(1, -1, 1, 1)
    std = x.std(axis=(0, 2, 3)).reshape(1, -1, 1, 1)
    images = rng.normal(mean, std, size=(len(targets), *x.shape[1:])).round().clip(0, 255).astype(np.uint8)
    none = np.full(len(targets), -1, np.int64)
    return Mixed(images, targets, none, none.copy(), np.zeros(len(targets)))


def fill_quota(y: np.ndarray, ratio: float | None = None) -> dict[int, int]:
    """Per class: the images that bring it to the largest class's size, or, with `ratio`, at most ratio x
    its real count of them (the rest of the gap is left to weights, as balance.synthetic_share does)."""
    counts = np.bincount(y)
    gap = counts.max() - counts
    if ratio is not None:
        gap = np.minimum(gap, np.floor(ratio * counts).astype(int))
    return {c: int(n) for c, n in enumerate(gap) if n > 0}
