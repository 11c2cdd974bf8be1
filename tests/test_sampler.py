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
    assert (y_res == 8).sum() == 15 and s.n_synthetic_ == {3: 0, 8: 9}  # keyed by label, like sampling_strategy_


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


def test_it_is_an_imbalanced_learn_over_sampler_with_its_fitted_strategy(digits_two_classes):
    from imblearn.over_sampling.base import BaseOverSampler

    X, y = digits_two_classes
    sampler = augment.GANOverSampler(image_shape=(8, 8), config=TINY)
    assert isinstance(sampler, BaseOverSampler)
    sampler.fit_resample(X, y)
    assert sampler.sampling_strategy_ == {8: 24}  # what imbalanced-learn computes for 'auto'
    assert sampler.n_synthetic_ == {3: 0, 8: 24}


def test_bad_parameters_are_named_as_scikit_learn_does():
    X, y = np.zeros((10, 64)), np.array([0] * 7 + [1] * 3)
    with pytest.raises(ValueError, match="The 'max_value' parameter of GANOverSampler must be"):
        augment.GANOverSampler(image_shape=(8, 8), max_value=-1).fit_resample(X, y)


def test_more_samples_without_training_again_and_a_safe_round_trip(digits_two_classes, tmp_path, monkeypatch):
    import augment.sampler

    X, y = digits_two_classes
    sampler = augment.GANOverSampler(image_shape=(8, 8), config=TINY)
    sampler.fit_resample(X, y)
    monkeypatch.setattr(augment.sampler, "run_stages", lambda *a, **k: pytest.fail("sample() trained again"))
    X_new, y_new = sampler.sample({8: 5, 3: 2})
    assert X_new.shape == (7, 64) and sorted(y_new.tolist()) == [3, 3, 8, 8, 8, 8, 8]
    assert X_new.min() >= 0 and X_new.max() <= 16  # X's scale
    sampler.save(tmp_path / "sampler.pt")
    again = augment.GANOverSampler.load(tmp_path / "sampler.pt")  # torch.load(weights_only=True) inside
    X_again, y_again = again.sample({8: 5, 3: 2})
    assert np.array_equal(X_again, X_new) and np.array_equal(y_again, y_new)
    with pytest.raises(ConfigError, match="knows"):
        again.sample({5: 1})


# imbalanced-learn's own sampler checks. Those that fit on its tabular test data cannot apply: their X has
# 2, 3 or 20 features, which is no image of at least 8x8 pixels, the smallest a GAN here trains on.
CANNOT_APPLY = {
    "check_samplers_fit", "check_samplers_fit_resample", "check_samplers_sampling_strategy_fit_resample",
    "check_samplers_pandas", "check_samplers_pandas_sparse", "check_samplers_list", "check_samplers_multiclass_ova",
    "check_samplers_preserve_dtype", "check_samplers_sample_indices", "check_samplers_2d_target",
    "check_sampler_get_feature_names_out", "check_sampler_get_feature_names_out_pandas",
}


def test_imbalanced_learns_own_checks_pass_where_they_apply():
    from imblearn.utils.estimator_checks import _yield_all_checks

    sampler = augment.GANOverSampler(image_shape=(8, 8), config=TINY)
    ran = []
    for check in _yield_all_checks(sampler, legacy=True):
        name = getattr(check, "func", check).__name__
        if name not in CANNOT_APPLY:
            check(type(sampler).__name__, sampler)
            ran.append(name)
    assert {"check_target_type", "check_samplers_one_label"} <= set(ran)
    assert "check_samplers_sparse" not in ran  # dense images only, declared in the sampler's tags


def test_a_sparse_matrix_is_refused_clearly():
    from scipy import sparse

    with pytest.raises(ConfigError, match="dense"):
        augment.GANOverSampler(image_shape=(8, 8)).fit_resample(sparse.csr_matrix(np.ones((4, 64))), [0, 0, 1, 1])


def test_a_per_class_variant_resamples_but_cannot_sample_more(digits_two_classes):
    X, y = digits_two_classes
    config = {**TINY, "model": {**TINY["model"], "variant": "dcgan"}}
    sampler = augment.GANOverSampler(image_shape=(8, 8), config=config)
    _, y_res = sampler.fit_resample(X, y)
    assert (y_res == 8).sum() == 30
    with pytest.raises(ConfigError, match="one conditional generator"):
        sampler.sample({8: 1})
