"""The output's PNG writer: files any decoder reads back exactly, written by worker processes when there are many."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from augment.png_files import MIN_PER_WORKER, png_bytes, write_pngs


@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB"), (4, "RGBA")])
def test_a_png_decodes_to_the_same_pixels(tmp_path, channels, mode):
    image = np.random.default_rng(channels).integers(0, 256, (channels, 7, 5), dtype=np.uint8)
    (tmp_path / "x.png").write_bytes(png_bytes(image))
    with Image.open(tmp_path / "x.png") as read:
        assert read.mode == mode and read.size == (5, 7)
        pixels = np.asarray(read)
    assert np.array_equal(pixels.reshape(7, 5, channels).transpose(2, 0, 1), image)


def test_only_uint8_grey_rgb_or_rgba_is_written():
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(np.zeros((1, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"\(2, 4, 4\)"):
        png_bytes(np.zeros((2, 4, 4), np.uint8))


def test_many_images_are_written_by_worker_processes_to_their_paths(tmp_path):
    n = 2 * MIN_PER_WORKER + 7  # enough for two workers
    images = np.random.default_rng(0).integers(0, 256, (n, 1, 4, 4), dtype=np.uint8)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    paths = [f"{'ab'[i % 2]}/{i}.png" for i in range(n)]
    rows = list(range(n))[::-1]  # file i holds image n-1-i
    write_pngs(tmp_path, paths, images, rows, workers=2)
    assert len(list(tmp_path.rglob("*.png"))) == n
    for i in (0, 1, n // 2, n - 1):
        assert np.array_equal(np.asarray(Image.open(tmp_path / paths[i])), images[rows[i], 0])


def test_a_workers_error_reaches_the_caller_as_the_same_kind_of_error(tmp_path):
    """The second block (a worker's) writes into a folder that is not there: the caller gets the
    FileNotFoundError with its path, after the first block (this process's) was written."""
    n = 2 * MIN_PER_WORKER
    (tmp_path / "here").mkdir()
    paths = [f"here/{i}.png" for i in range(n // 2)] + [f"missing/{i}.png" for i in range(n // 2)]
    with pytest.raises(FileNotFoundError, match="missing"):
        write_pngs(tmp_path, paths, np.zeros((n, 1, 2, 2), np.uint8), list(range(n)), workers=2)
    assert len(list((tmp_path / "here").iterdir())) == n // 2


def test_where_no_process_can_start_every_image_is_written_here(tmp_path, monkeypatch):
    from augment import png_files

    def refused(*args, **kwargs):
        raise PermissionError("process creation refused (injected)")

    monkeypatch.setattr(png_files.subprocess, "Popen", refused)
    n = 3 * MIN_PER_WORKER
    images = np.random.default_rng(1).integers(0, 256, (n, 1, 3, 3), dtype=np.uint8)
    write_pngs(tmp_path, [f"{i}.png" for i in range(n)], images, list(range(n)), workers=3)
    assert len(list(tmp_path.iterdir())) == n
    assert np.array_equal(np.asarray(Image.open(tmp_path / f"{n - 1}.png")), images[n - 1, 0])


def test_no_images_write_nothing(tmp_path):
    write_pngs(tmp_path, [], np.zeros((0, 1, 2, 2), np.uint8), [])
    assert not any(tmp_path.iterdir())
