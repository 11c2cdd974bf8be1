import numpy as np
import pytest
from imblearn.pipeline import make_pipeline
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

import augment
from augment.errors import ConfigError

TINY = {"model": {"latent_dim": 4, "width": 4}, "train": {"steps": 2, "batch_size": 8, "checkpoint_every": 2,
                                                          "aux_steps": 5},
        "score": {"external": "logreg"},
        "select": {"min_aux_prob": 0.0, "min_ext_prob": 0.0, "require_agreement": False, "reject_copies": False,
                   "reject_duplicates": False}}


@pytest.fixture(scope="module")
def digits_two_classes():
    d = load_digits()
    keep = np.concatenate([np.flatnonzero(d.target == 3)[:30], np.flatnonzero(d.target == 8)[:6]])
    return d.data[keep], d.target[keep]  # flattened 8x8, values 0..16


def test_fit_resample_balances_and_keeps_layout_and_scale(digits_two_classes):
    X, y = digits_two_classes
    X_res, y_res = augment.GANOverSampler(image_shape=(8, 8), config=TINY).fit_resample(X, y)
    assert np.bincount(y_res)[[3, 8]].tolist() == [30, 30]
    assert X_res.shape == (60, 64) and X_res.dtype == X.dtype
    assert np.array_equal(X_res[:36], X) and X_res.max() <= 16 and X_res.min() >= 0


def test_inside_an_imbalanced_learn_pipeline(digits_two_classes):
    X, y = digits_two_classes
    pipe = make_pipeline(augment.GANOverSampler(image_shape=(8, 8), config=TINY), LogisticRegression(max_iter=500))
    pipe.fit(X, y)
    assert pipe.predict(X).shape == (36,)
    assert clone(pipe).get_params()["ganoversampler__image_shape"] == (8, 8)


def test_strategy_dict_and_callable_use_the_labels(digits_two_classes):
    X, y = digits_two_classes
    _, y_res = augment.GANOverSampler(sampling_strategy={8: 10}, image_shape=(8, 8), config=TINY).fit_resample(X, y)
    assert (y_res == 8).sum() == 10
    s = augment.GANOverSampler(sampling_strategy=lambda labels: {8: int((labels == 3).sum()) // 2},
                               image_shape=(8, 8), config=TINY)
    _, y_res = s.fit_resample(X, y)
    assert (y_res == 8).sum() == 15 and s.n_synthetic_ == {"3": 0, "8": 9}


def test_image_arrays_in_and_out(digits_two_classes):
    X, y = digits_two_classes
    images = (X.reshape(-1, 8, 8) * 15).astype(np.uint8)
    X_res, _ = augment.GANOverSampler(config=TINY).fit_resample(images, y)
    assert X_res.shape == (60, 8, 8) and X_res.dtype == np.uint8


def test_flattened_input_needs_its_shape(digits_two_classes):
    X, y = digits_two_classes
    with pytest.raises(ConfigError, match="pass image_shape"):
        augment.GANOverSampler(config=TINY).fit_resample(X, y)
    with pytest.raises(ConfigError, match=r"image_shape \(4, 4\) has 16 values per image; X has 64"):
        augment.GANOverSampler(image_shape=(4, 4), config=TINY).fit_resample(X, y)
