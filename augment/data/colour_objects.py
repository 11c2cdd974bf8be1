"""Colour objects: a procedural 64 px RGB benchmark in the spirit of hair colour, built in seconds and
never downloaded. The class is the colour family of one object (black, blond, brown, red, grey); its
shape (ellipse, box, triangle, star, ring), size, position, rotation, lighting gradient, texture, the
textured background and the pixel noise vary freely, so a generator must draw the nuisance variation
too, and a judge must read the colour of the object rather than of the image.

Image i of a split depends only on (seed, i) and its class, so a split is reproducible and a larger one
starts with the smaller one's images. Long-tailed splits: `make_split(exponential_counts(1000, 5, 50))`
(augment.data.longtail).
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

CLASSES = ("black", "blond", "brown", "red", "grey")
SHAPES = ("ellipse", "box", "triangle", "star", "ring")
# per class: hue range (turns; may wrap below 0), saturation range, value range of the object's base colour
FAMILIES = {
    "black": ((0.0, 1.0), (0.0, 0.35), (0.05, 0.17)),
    "blond": ((0.11, 0.15), (0.30, 0.60), (0.78, 0.95)),
    "brown": ((0.05, 0.09), (0.50, 0.80), (0.28, 0.46)),
    "red": ((-0.02, 0.025), (0.65, 0.90), (0.50, 0.78)),
    "grey": ((0.0, 1.0), (0.0, 0.07), (0.42, 0.70)),
}
BACKGROUND_HUES = (0.25, 0.80)  # greens, cyans, blues, purples: no background reads as an object class
SUPERSAMPLE = 2  # shapes are drawn at twice the size and averaged down: smooth edges


def render(labels: Sequence[int] | np.ndarray, size: int = 64, seed: int = 0, first: int = 0) -> np.ndarray:
    """uint8 (N, 3, size, size) images of the given classes (indices into CLASSES); image i is drawn from
    the random stream (seed, first + i), so it does not depend on the other images asked for."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise ValueError(f"labels must be class indices 0..{len(CLASSES) - 1} ({', '.join(CLASSES)}); "
                         f"got {sorted(set(labels.tolist()) - set(range(len(CLASSES))))}")
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels; got {size}")
    out = np.empty((len(labels), 3, size, size), dtype=np.uint8)
    for i, c in enumerate(labels):
        rng = np.random.default_rng([seed, first + i])
        out[i] = _one(int(c), size, rng)
    return out


def make_split(counts: Sequence[int], size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """counts[c] images of each class c, classes interleaved in a seeded order: (images, labels)."""
    labels = np.concatenate([np.full(n, c, dtype=np.int64) for c, n in enumerate(counts)])
    order = np.random.default_rng([seed, 0, 1]).permutation(len(labels))  # not any image's stream (seed, i)
    labels = labels[order]
    return render(labels, size, seed), labels


def write_folder(root: str | Path, images: np.ndarray, labels: np.ndarray, prefix: str = "img") -> Path:
    """One folder per class name of PNG files (`augment run --data ROOT` reads it); returns root."""
    from PIL import Image

    root = Path(root)
    for name in CLASSES:
        (root / name).mkdir(parents=True, exist_ok=True)
    for i, (x, c) in enumerate(zip(images, labels)):
        Image.fromarray(np.ascontiguousarray(x.transpose(1, 2, 0))).save(root / CLASSES[c] / f"{prefix}{i:06d}.png")
    return root


def _colour(family: str, rng: np.random.Generator) -> np.ndarray:
    (h0, h1), (s0, s1), (v0, v1) = FAMILIES[family]
    return np.array(colorsys.hsv_to_rgb(rng.uniform(h0, h1) % 1.0, rng.uniform(s0, s1), rng.uniform(v0, v1)))


def _mask(shape: str, u: np.ndarray, v: np.ndarray, a: float, b: float, rng: np.random.Generator) -> np.ndarray:
    """Inside of a shape centred at 0 with half-axes (a, b) in the rotated coordinates (u, v)."""
    if shape == "ellipse":
        return (u / a) ** 2 + (v / b) ** 2 <= 1
    if shape == "box":
        return (np.abs(u) <= a) & (np.abs(v) <= b)
    if shape == "triangle":
        return (v >= -b) & (np.abs(u) <= a * (b - v) / (2 * b))
    r, theta = np.hypot(u / a, v / b), np.arctan2(v, u)
    if shape == "star":
        points, depth = int(rng.integers(4, 8)), rng.uniform(0.25, 0.45)
        return r <= 1 - depth + depth * np.cos(points * theta)
    return (r <= 1) & (r >= rng.uniform(0.45, 0.7))  # ring


def _one(c: int, size: int, rng: np.random.Generator) -> np.ndarray:
    n = size * SUPERSAMPLE
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64) / n  # [0, 1)
    # background: a colour away from every class, a linear gradient and low-frequency texture
    bg = np.array(colorsys.hsv_to_rgb(rng.uniform(*BACKGROUND_HUES), rng.uniform(0.18, 0.55), rng.uniform(0.3, 0.85)))
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (xx - 0.5) * math.cos(angle) + (yy - 0.5) * math.sin(angle)
    coarse = rng.normal(0, 1, (3, 6, 6))
    texture = np.stack([_upsample(coarse[k], n) for k in range(3)])
    image = bg[:, None, None] * (1 + rng.uniform(0, 0.5) * ramp + rng.uniform(0.03, 0.12) * texture)
    # the object: its class colour, lit from one side, with stripes or grain
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    cx, cy = rng.uniform(0.3, 0.7, 2)
    a = rng.uniform(0.14, 0.3)
    b = a * rng.uniform(0.55, 1.0)
    rot = rng.uniform(0, 2 * math.pi)
    u = (xx - cx) * math.cos(rot) + (yy - cy) * math.sin(rot)
    v = -(xx - cx) * math.sin(rot) + (yy - cy) * math.cos(rot)
    inside = _mask(shape, u, v, a, b, rng)
    light = rng.uniform(0, 2 * math.pi)
    shade = 1 + rng.uniform(0.1, 0.45) * ((u * math.cos(light) + v * math.sin(light)) / a).clip(-1, 1)
    if rng.random() < 0.5:
        shade = shade * (1 + rng.uniform(0.03, 0.1) * np.sin(2 * math.pi * u / rng.uniform(0.03, 0.08)))
    else:
        shade = shade * (1 + 0.06 * _upsample(rng.normal(0, 1, (12, 12)), n))
    image = np.where(inside[None], _colour(CLASSES[c], rng)[:, None, None] * shade[None], image)
    image = image.reshape(3, size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(2, 4))
    image = image + rng.normal(0, rng.uniform(0.01, 0.04), image.shape)
    return (image.clip(0, 1) * 255 + 0.5).astype(np.uint8)


def _upsample(grid: np.ndarray, n: int) -> np.ndarray:
    """A small random grid stretched bilinearly to n x n: smooth texture."""
    k = grid.shape[0]
    pos = np.linspace(0, k - 1, n)
    lo = np.floor(pos).astype(int).clip(0, k - 2)
    f = pos - lo
    rows = grid[lo] * (1 - f)[:, None] + grid[lo + 1] * f[:, None]
    return rows[:, lo] * (1 - f)[None, :] + rows[:, lo + 1] * f[None, :]
