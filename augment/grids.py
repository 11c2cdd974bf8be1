"""Image grids (one row per class) as PNG files, upscaled so tiny images stay visible."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from augment.atomic import write_bytes


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> uint8 in [0, 255]."""
    return images.float().add(1).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def grid_image(images: torch.Tensor | np.ndarray, ncol: int, min_cell: int = 32, pad: int = 2) -> Image.Image:
    """uint8 (N, C, H, W), a tensor on any device or an array -> one PIL image with `ncol` columns,
    nearest-neighbour upscaled."""
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    n, c, h, w = x.shape
    scale = max(1, -(-min_cell // h))
    nrow = max(1, -(-n // ncol))
    ch, cw = h * scale, w * scale
    canvas = np.full((nrow * (ch + pad) + pad, ncol * (cw + pad) + pad, 3), 255, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, ncol)
        cell = x[i].transpose(1, 2, 0)
        if c == 1:
            cell = np.repeat(cell, 3, axis=2)
        cell = cell.repeat(scale, axis=0).repeat(scale, axis=1)
        top, left = pad + r * (ch + pad), pad + col * (cw + pad)
        canvas[top:top + ch, left:left + cw] = cell
    return Image.fromarray(canvas)


def save_grid(images: torch.Tensor, ncol: int, path: Path) -> None:
    buf = io.BytesIO()
    grid_image(images, ncol).save(buf, format="PNG")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, buf.getvalue())


def save_gif(frames: list[Path], path: Path, ms_per_frame: int = 400) -> bool:
    """An animated GIF of the sample grids, in order; the last frame is held longer."""
    if not frames:
        return False
    images = [Image.open(f).convert("RGB") for f in frames]
    durations = [ms_per_frame] * (len(images) - 1) + [ms_per_frame * 5]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    write_bytes(path, buf.getvalue())
    return True
