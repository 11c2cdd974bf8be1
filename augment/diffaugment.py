"""Differentiable augmentation (Zhao et al. 2020, DiffAugment): the same random colour, translation
and cutout applied to real and fake images before the discriminator, so that it cannot memorise a
class of 40 images. Every random draw comes from the generator passed in, so runs stay reproducible
and resumable."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

Aug = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _rand(x: torch.Tensor, g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=g, device=x.device, dtype=torch.float32).to(x.dtype)


def brightness(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return x + (_rand(x, g, x.shape[0], 1, 1, 1) - 0.5)


def saturation(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_rand(x, g, x.shape[0], 1, 1, 1) * 2) + mean


def contrast(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, g, x.shape[0], 1, 1, 1) + 0.5) + mean


def translation(x: torch.Tensor, g: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ratio x size pixels in each direction, filling with zeros."""
    n, c, h, w = x.shape
    sy, sx = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    dy = torch.randint(-sy, sy + 1, (n, 1, 1), generator=g, device=x.device)
    dx = torch.randint(-sx, sx + 1, (n, 1, 1), generator=g, device=x.device)
    gy = torch.arange(h, device=x.device).view(1, h, 1)
    gx = torch.arange(w, device=x.device).view(1, 1, w)
    gy = (gy + dy + sy).clamp(0, h + 2 * sy - 1)
    gx = (gx + dx + sx).clamp(0, w + 2 * sx - 1)
    padded = F.pad(x, [sx, sx, sy, sy])
    idx = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded.permute(0, 2, 3, 1)[idx, gy, gx].permute(0, 3, 1, 2).contiguous(memory_format=torch.contiguous_format)


def cutout(x: torch.Tensor, g: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of ratio x size per image at a random position."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=g, device=x.device) - ch // 2
    ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=g, device=x.device) - cw // 2
    gy = torch.arange(h, device=x.device).view(1, h, 1)
    gx = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (gy >= oy) & (gy < oy + ch) & (gx >= ox) & (gx < ox + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES: dict[str, list[Aug]] = {
    "color": [brightness, saturation, contrast],
    "translation": [translation],
    "cutout": [cutout],
}


def parse_policy(policy: str) -> list[str]:
    """'color,translation' -> ['color', 'translation']; '' -> []."""
    return [p.strip() for p in policy.split(",") if p.strip()]


def diff_augment(x: torch.Tensor, policy: list[str], g: torch.Generator) -> torch.Tensor:
    for name in policy:
        for fn in POLICIES[name]:
            x = fn(x, g)
    return x
