import struct

import numpy as np
import pytest
import torch
from makers import make_image_folder, make_manifest, make_npz, pattern
from PIL import Image

from augment.config import ImageConfig
from augment.data import LabeledImages, digits_lt, load_dataset


@pytest.mark.parametrize("ext", ["png", "jpg", "bmp", "webp"])
def test_image_folder_each_format(tmp_path, ext):
    make_image_folder(tmp_path, {"cat": 3, "dog": 2}, size=8, ext=ext)
    data = load_dataset(str(tmp_path))
    assert data.class_names == ["cat", "dog"]
    assert data.counts() == [3, 2]
    assert data.images.dtype == torch.uint8 and data.images.shape == (5, 1, 8, 8)
    assert len(set(data.sample_ids)) == 5


def test_image_folder_pixels_survive_exactly(tmp_path):
    make_image_folder(tmp_path, {"a": 2, "b": 2}, size=8)
    data = load_dataset(str(tmp_path))
    first = np.asarray(Image.open(tmp_path / "a" / "img000.png"))
    assert np.array_equal(data.images[0, 0].numpy(), first)


def test_image_folder_recurses_into_subfolders_like_imagefolder(tmp_path):
    make_image_folder(tmp_path / "a", {"sub": 2}, size=8)  # a/sub/*.png belong to class a
    make_image_folder(tmp_path, {"b": 2}, size=8)
    data = load_dataset(str(tmp_path))
    assert data.class_names == ["a", "b"] and data.counts() == [2, 2]


def test_folder_of_loose_images_is_one_class(tmp_path):
    d = tmp_path / "faces"
    d.mkdir()
    for i in range(3):
        pattern(i, 8, "RGB").save(d / f"{i}.png")
    data = load_dataset(str(d))
    assert data.class_names == ["faces"] and data.channels == 3


@pytest.mark.parametrize("name", ["manifest.csv", "manifest.parquet"])
def test_manifest_relative_and_absolute_paths(tmp_path, name):
    absolute = tmp_path / "elsewhere" / "x.png"
    absolute.parent.mkdir()
    pattern(7).save(absolute)
    m = make_manifest(tmp_path, [("imgs/1.png", "ant"), ("imgs/2.png", "ant"), (str(absolute), "bee"),
                                 ("imgs/3.png", "bee")], name=name)
    data = load_dataset(str(m))
    assert data.class_names == ["ant", "bee"] and data.counts() == [2, 2]


def test_manifest_numeric_labels_sort_numerically(tmp_path):
    rows = [(f"i{i}.png", str(lab)) for i, lab in enumerate([10, 10, 2, 2, 1, 1])]
    data = load_dataset(str(make_manifest(tmp_path, rows)))
    assert data.class_names == ["1", "2", "10"]


def test_npz_x_y_and_train_test_keys(tmp_path):
    a = load_dataset(str(make_npz(tmp_path / "a.npz", [3, 4])))
    assert a.counts() == [3, 4] and a.class_names == ["0", "1"]
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "m.npz", x_train=rng.integers(0, 255, (6, 8, 8), dtype=np.uint8),
             y_train=np.array([0, 0, 1, 1, 2, 2]),
             x_test=rng.integers(0, 255, (4, 8, 8), dtype=np.uint8), y_test=np.array([0, 1, 2, 2]))
    assert load_dataset(str(tmp_path / "m.npz")).counts() == [2, 2, 2]
    assert load_dataset(f"{tmp_path / 'm.npz'}:test").counts() == [1, 1, 2]


def test_npz_rgb_and_class_names(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "c.npz", x=rng.integers(0, 255, (4, 8, 8, 3), dtype=np.uint8), y=np.array([0, 0, 1, 1]),
             class_names=np.array(["plane", "car"]))
    data = load_dataset(str(tmp_path / "c.npz"))
    assert data.channels == 3 and data.class_names == ["plane", "car"]


def test_shared_mnist_npz_loads_as_28px_gray():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist.npz"
    if not path.exists():
        pytest.skip("../shared/datasets/mnist.npz is not beside this checkout")
    data = load_dataset(f"{path}:test")
    assert data.images.shape == (10000, 1, 28, 28) and data.counts()[0] == 980


def test_digits_and_digits_lt():
    d = load_dataset("digits")
    assert d.images.shape == (1797, 1, 8, 8) and d.images.max() == 255
    train, test = digits_lt(seed=0)
    counts = train.counts()
    assert counts == sorted(counts, reverse=True)
    assert counts[0] / counts[-1] >= 19  # exponential imbalance ratio 20
    assert len(test) == 719
    assert not set(train.sample_ids) & set(test.sample_ids)
    assert load_dataset("digits-lt:test").fingerprint == test.fingerprint


def _idx(path, array, magic):
    with open(path, "wb") as fh:
        fh.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in array.shape) + array.tobytes())


def test_torchvision_mnist_from_local_raw_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("t10k", 10)):
        _idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28), dtype=np.uint8), 0x803)
        _idx(raw / f"{split}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8), 0x801)
    data = load_dataset(f"torchvision:MNIST:{tmp_path}")
    assert data.images.shape == (30, 1, 28, 28) and data.counts() == [3] * 10
    assert data.class_names[0] == "0 - zero"
    assert load_dataset(f"torchvision:mnist:{tmp_path}:test").counts() == [1] * 10


def test_mixed_sizes_and_modes_are_normalised_and_counted(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    pattern(0, 16, "L").save(tmp_path / "a" / "big.png")
    pattern(1, 8, "RGB").save(tmp_path / "a" / "rgb.png")
    pattern(2, 8, "L").save(tmp_path / "b" / "ok.png")
    Image.fromarray(np.zeros((8, 12), np.uint8)).save(tmp_path / "b" / "wide.png")
    data = load_dataset(str(tmp_path), ImageConfig(size=8, channels=1))
    assert data.images.shape == (4, 1, 8, 8)
    assert data.notes["resized"] == 2
    assert data.notes["mode_converted"] == 1 and data.notes["colour_dropped"] == 1
    auto = load_dataset(str(tmp_path))
    assert auto.channels == 3 and auto.size == 8  # 'auto' keeps the colour and the most common size


def test_palette_16bit_and_rgba_images_decode(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    Image.fromarray((np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)).save(tmp_path / "a" / "deep.png")
    pattern(3, 8, "RGB").convert("P").save(tmp_path / "a" / "pal.png")
    Image.new("RGBA", (8, 8), (10, 20, 30, 128)).save(tmp_path / "b" / "alpha.png")
    Image.new("LA", (8, 8), (99, 50)).save(tmp_path / "b" / "la.png")
    data = load_dataset(str(tmp_path))
    assert data.images.shape == (4, 3, 8, 8)
    deep = data.images[0, 0].numpy()
    assert deep.max() > 200 and deep.min() == 0  # 16-bit scaled down, not clipped
    assert data.notes["source_modes"]["RGBA"] == 1


def test_fingerprint_is_stable_and_content_sensitive(tmp_path):
    make_image_folder(tmp_path, {"a": 2, "b": 2}, size=8)
    one, two = load_dataset(str(tmp_path)), load_dataset(str(tmp_path))
    assert one.fingerprint == two.fingerprint and len(one.fingerprint) == 64
    pattern(99).save(tmp_path / "b" / "img003.png")
    assert load_dataset(str(tmp_path)).fingerprint != one.fingerprint


def test_labeled_images_save_load_round_trip(tmp_path):
    train, _ = digits_lt(0)
    train.save(tmp_path / "d.npz")
    back = LabeledImages.load(tmp_path / "d.npz")
    assert back.fingerprint == train.fingerprint and back.sample_ids == train.sample_ids
    assert back.class_names == train.class_names
