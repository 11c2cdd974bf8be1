"""Decode one image file into a uint8 array, refusing anything that is not a whole, sane image."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from augment.errors import DatasetError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
MIN_SIDE = 4  # a shorter side below this leaves a centre square too small to hold anything to learn
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


@dataclass
class Decoded:
    """Pixels as (H, W) for grayscale or (H, W, 3) for colour, plus what it was on disk."""

    pixels: np.ndarray
    mode: str
    frames: int = 1
    shape: tuple[int, int] = (0, 0)  # (H, W) on disk, before any reduction
    rotated: bool = False  # turned upright by its EXIF orientation tag

    @property
    def is_gray(self) -> bool:
        return self.pixels.ndim == 2


def decode_image(path: str | Path, max_pixels: int, max_side: int | None = None) -> Decoded:
    """Open, size-check (before decoding), decode and convert to L or RGB uint8. With `max_side`, an image
    whose shorter side is longer is decoded at reduced scale (JPEG: by the decoder, so the full-size image
    is never in memory; other formats: reduced right after decoding) to a shorter side of at least
    `max_side`, so that a dataset of photos is never held at full size."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise DatasetError(
                        f"Image '{path}' is {w}x{h} = {w * h} pixels, over the limit of {max_pixels} "
                        "(image.max_pixels). Shrink it or raise image.max_pixels if it is genuine.")
                if w == 0 or h == 0:
                    raise DatasetError(f"Image '{path}' has zero width or height.")
                if min(w, h) < MIN_SIDE:
                    raise DatasetError(
                        f"Image '{path}' is {w}x{h}: its shorter side is under {MIN_SIDE} pixels, so the centre "
                        "square every image is cropped to would hold almost nothing. Crop it to the object or "
                        "remove it.")
                frames = int(getattr(im, "n_frames", 1) or 1)
                im.seek(0)
                factor = min(w, h) // max_side if max_side else 1
                if factor >= 2 and im.format == "JPEG":
                    im.draft(im.mode, (-(-w // factor), -(-h // factor)))
                im.load()
                mode = im.mode
                upright = _upright(im)
                reduce = min(upright.size) // max_side if max_side else 1
                pixels = _to_uint8(upright.reduce(reduce) if reduce >= 2 else upright)
    except DatasetError:
        raise
    except FileNotFoundError:
        raise DatasetError(f"Image file '{path}' does not exist.") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning,
            EOFError) as exc:
        size = path.stat().st_size if path.exists() else -1
        what = "is empty (0 bytes)" if size == 0 else f"cannot be decoded as an image ({type(exc).__name__}: {exc})"
        raise DatasetError(f"Image file '{path}' {what}. Remove or replace the file.") from None
    return Decoded(pixels, mode, frames, (h, w), rotated=upright is not im)


def _upright(im: Image.Image) -> Image.Image:
    """The image as a viewer shows it: a photo whose EXIF orientation says it was taken turned or mirrored is
    turned back (a new image); any other image is returned as it is."""
    orientation = im.getexif().get(0x0112, 1)
    if orientation in (None, 1) or not isinstance(orientation, int):
        return im
    return ImageOps.exif_transpose(im)


def _to_uint8(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        return np.clip(np.rint(arr * (255.0 / hi)), 0, 255).astype(np.uint8)
    if mode in GRAY_MODES:
        return np.asarray(im.convert("L"), dtype=np.uint8)
    if mode == "P" or mode == "PA":
        im = im.convert("RGBA")
    return np.asarray(im.convert("RGB"), dtype=np.uint8)
