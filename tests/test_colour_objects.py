"""The procedural colour benchmark: seeded, the classes it states, long-tailed counts, a folder augment reads."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from augment.data.colour_objects import CLASSES, make_split, render, write_folder
from augment.data.longtail import exponential_counts


def hsv_histogram(images: np.ndarray) -> np.ndarray:
    """Per image, the share of pixels in each coarse hue x saturation x value bin: colour only, no shape."""
    from matplotlib.colors import rgb_to_hsv

    hsv = rgb_to_hsv(images.transpose(0, 2, 3, 1) / 255.0).reshape(len(images), -1, 3)
    bins = (np.minimum(hsv[..., 0] * 12, 11).astype(int) * 16 + np.minimum(hsv[..., 1] * 4, 3).astype(int) * 4
            + np.minimum(hsv[..., 2] * 4, 3).astype(int))
    return np.stack([np.bincount(b, minlength=12 * 16) / b.size for b in bins])


def test_the_same_seed_draws_the_same_images_and_a_larger_split_starts_with_the_smaller():
    labels = [0, 1, 2, 3, 4, 4]
    assert np.array_equal(render(labels, 32, seed=3), render(labels, 32, seed=3))
    assert not np.array_equal(render(labels, 32, seed=3), render(labels, 32, seed=4))
    assert np.array_equal(render(labels[:3], 32, seed=3), render(labels, 32, seed=3)[:3])


def test_images_are_rgb_of_the_asked_size_and_vary_within_a_class():
    x = render([2] * 8, 64, seed=0)
    assert x.shape == (8, 3, 64, 64) and x.dtype == np.uint8
    assert render([2], 32).shape == (1, 3, 32, 32)
    flat = x.reshape(8, -1).astype(float)
    assert min(np.abs(flat[i] - flat[j]).mean() for i in range(8) for j in range(i)) > 10  # no two alike


def test_the_class_is_the_colour_an_unseen_image_is_read_by():
    x, y = make_split([80] * len(CLASSES), 32, seed=0)
    x_test, y_test = make_split([40] * len(CLASSES), 32, seed=1)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(np.sqrt(hsv_histogram(x)), y)
    assert (clf.predict(np.sqrt(hsv_histogram(x_test))) == y_test).mean() >= 0.9


def test_a_long_tailed_split_has_the_stated_counts_and_ratio():
    counts = exponential_counts(400, len(CLASSES), 20)
    assert counts[0] == 400 and 19 <= counts[-1] <= 20 and all(a > b for a, b in zip(counts, counts[1:]))
    _, y = make_split(counts, 16, seed=0)
    assert np.bincount(y).tolist() == counts


def test_bad_class_indices_and_sizes_are_refused_by_name():
    with pytest.raises(ValueError, match="class indices 0..4"):
        render([5])
    with pytest.raises(ValueError, match="at least 8 pixels"):
        render([0], size=4)


def test_a_written_split_is_a_class_folder_augment_reads(tmp_path):
    from augment.data import load_dataset

    x, y = make_split([3, 2, 2, 2, 2], 16, seed=0)
    data = load_dataset(str(write_folder(tmp_path / "colours", x, y)))
    assert data.class_names == sorted(CLASSES) and data.channels == 3 and len(data) == 11
    black = data.class_names.index("black")
    assert int((data.labels == black).sum()) == 3  # class 0 of the split, 3 images
