"""Bring images of any size and colour mode to one square size and channel count, counting what changed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from PIL import Image

from augment.errors import DatasetError

MIN_SIZE, MAX_SIZE = 8, 64


GRAY_TOLERANCE = 8  # lossy codecs (JPEG, WebP) store gray as RGB with small chroma noise


def has_colour(pixels: np.ndarray) -> bool:
    """True for (H, W, 3) pixels whose channels differ by more than codec noise; RGB-encoded gray is gray."""
    if pixels.ndim == 2:
        return False
    p = pixels.astype(np.int16)
    return bool(max(np.abs(p[..., 0] - p[..., 1]).max(), np.abs(p[..., 1] - p[..., 2]).max()) > GRAY_TOLERANCE)


def choose_size(shapes: Sequence[tuple[int, int]], requested: int | str, notes: dict) -> int:
    """The configured size, or for 'auto' the most common side, clamped to what the GAN supports."""
    if requested != "auto":
        return int(requested)
    (h, w), _ = Counter(shapes).most_common(1)[0]
    side = min(h, w)
    size = min(max(side, MIN_SIZE), MAX_SIZE)
    if size != side:
        notes["size_clamped"] = f"most common size {h}x{w} is outside {MIN_SIZE}-{MAX_SIZE}; using {size}"
    return size


def choose_channels(colour_flags: Sequence[bool], requested: int | str) -> int:
    if requested != "auto":
        return int(requested)
    return 3 if any(colour_flags) else 1


def to_square(pixels: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square, then resize with antialiasing."""
    h, w = pixels.shape[:2]
    if h != w:
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        pixels = pixels[top:top + s, left:left + s]
    if pixels.shape[0] == size:
        return pixels
    im = Image.fromarray(pixels)
    return np.asarray(im.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """(H, W) or (H, W, 3) -> (H, W, channels); colour to gray uses ITU-R 601 luma like PIL."""
    if channels == 1:
        if pixels.ndim == 3:
            pixels = np.asarray(Image.fromarray(pixels).convert("L"), dtype=np.uint8)
        return pixels[..., None]
    if pixels.ndim == 2:
        return np.repeat(pixels[..., None], 3, axis=2)
    return pixels


def normalize_images(pixels: Sequence[np.ndarray], size: int | str, channels: int | str,
                     notes: dict, shapes: Sequence[tuple[int, int]] | None = None) -> np.ndarray:
    """A list of (H, W[, 3]) uint8 arrays -> one (N, C, S, S) uint8 array; counts go into `notes`.
    `shapes`: the images' sizes on disk where they were decoded at reduced scale ('auto' size uses them)."""
    if not pixels:
        raise DatasetError("The dataset holds no images.")
    s = choose_size(list(shapes) if shapes is not None else [p.shape[:2] for p in pixels], size, notes)
    colour = [has_colour(p) for p in pixels]
    c = choose_channels(colour, channels)
    out = np.empty((len(pixels), s, s, c), dtype=np.uint8)
    resized = converted = dropped_colour = 0
    for i, p in enumerate(pixels):
        if p.shape[0] != s or p.shape[1] != s:
            resized += 1
            p = to_square(p, s)
        if (p.ndim == 2) != (c == 1):
            converted += 1
            dropped_colour += int(c == 1 and colour[i])
        out[i] = to_channels(p, c)
    notes["image_size"] = s
    notes["channels"] = c
    if resized:
        notes["resized"] = resized
    if converted:
        notes["mode_converted"] = converted
    if dropped_colour:
        notes["colour_dropped"] = dropped_colour
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def normalize_array(x: np.ndarray, size: int | str, channels: int | str, notes: dict) -> np.ndarray:
    """Fast path for array datasets (npz, torchvision): (N, H, W[, C]) uint8 -> (N, C, S, S)."""
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim == 4 and x.shape[-1] == 4:
        x = x[..., :3]
        notes["alpha_dropped"] = int(x.shape[0])
    gray = x.ndim == 3
    s = choose_size([x.shape[1:3]], size, notes)
    c = choose_channels([not gray and has_colour(x)], channels)
    if x.shape[1] == s and x.shape[2] == s and (gray == (c == 1)):
        notes["image_size"], notes["channels"] = s, c
        out = x[:, None] if gray else x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(out)
    return normalize_images(list(x), s, c, notes)
