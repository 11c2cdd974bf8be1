import numpy as np
import pytest
import torch
from makers import bars

from augment import checkpoint as ckpt
from augment.config import build_config
from augment.data import LabeledImages
from augment.errors import ConfigError
from augment.score import cnn
from augment.score.external import classification_accuracy_score, fit_external, holdout_split


@pytest.fixture(scope="module")
def bars_data():
    x = torch.stack([torch.from_numpy(bars(i % 2, 16, seed=i, thickness=2)) for i in range(80)])[:, None]
    y = torch.tensor([i % 2 for i in range(80)])
    return LabeledImages(x, y, ["horizontal", "vertical"], [f"b{i}" for i in range(80)], "bars")


def test_holdout_keeps_every_class_in_training():
    y = np.array([0] * 10 + [1] * 2 + [2] * 3)
    tr, ho = holdout_split(y, seed=0)
    assert set(y[tr]) == {0, 1, 2} and not set(tr) & set(ho)


@pytest.mark.parametrize("kind", ["cnn", "logreg"])
def test_external_classifier_reads_real_images_and_gives_features(kind, bars_data, tmp_path):
    clf, report = fit_external(bars_data, kind, steps=150, cache=tmp_path / "ext.pt")
    assert report.holdout_balanced_accuracy >= 0.9 and not report.weak
    probs, feats = clf.predict(bars_data.images[:5])
    assert probs.shape == (5, 2) and np.allclose(probs.sum(1), 1) and len(feats) == 5
    if kind == "cnn":
        assert (tmp_path / "ext.pt").exists() and feats.shape[1] == cnn.FEATURE_DIM
        again, _ = fit_external(bars_data, kind, steps=150, cache=tmp_path / "ext.pt")  # loads, no retraining
        assert np.allclose(again.predict(bars_data.images[:5])[0], probs)


def test_weak_classifier_is_flagged(bars_data):
    _, report = fit_external(bars_data, "cnn", steps=1, floor=0.99)
    assert report.weak


def test_torchscript_model_is_used_without_unpickling(bars_data, tmp_path):
    model = cnn.train_cnn(bars_data.images, bars_data.labels, 2, steps=100)
    path = tmp_path / "mine.pt"
    torch.jit.save(torch.jit.script(model), str(path))
    clf, report = fit_external(bars_data, f"torchscript:{path}")
    assert clf.kind == "torchscript" and report.holdout_balanced_accuracy >= 0.9


def test_bad_torchscript_files_are_refused_by_name(bars_data, tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        fit_external(bars_data, f"torchscript:{tmp_path / 'none.pt'}")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ConfigError, match=r"junk\.pt' is not a TorchScript model"):
        fit_external(bars_data, f"torchscript:{tmp_path / 'junk.pt'}")
    three = torch.jit.script(cnn.SmallCNN(1, 3))
    torch.jit.save(three, str(tmp_path / "three.pt"))
    with pytest.raises(ConfigError, match=r"must return logits of shape \(N, 2\)"):
        fit_external(bars_data, f"torchscript:{tmp_path / 'three.pt'}")


def test_classification_accuracy_score_of_real_images_as_synthetic(bars_data):
    cfg = build_config(sets=["score.external=logreg"])
    cas = classification_accuracy_score(bars_data.images, bars_data.labels, bars_data, cfg)
    assert cas["all"] >= 0.9 and set(cas) == {"horizontal", "vertical", "all"}
    flipped = classification_accuracy_score(bars_data.images, 1 - bars_data.labels, bars_data, cfg)
    assert flipped["all"] <= 0.1


def test_the_cached_cnn_is_refitted_when_its_recipe_changes(bars_data, tmp_path):
    cache = tmp_path / "ext.pt"
    first, _ = fit_external(bars_data, "cnn", steps=20, cache=cache)
    again, _ = fit_external(bars_data, "cnn", steps=20, cache=cache)
    other, _ = fit_external(bars_data, "cnn", steps=30, cache=cache)
    probs = [clf.predict(bars_data.images[:8])[0] for clf in (first, again, other)]
    assert np.array_equal(probs[0], probs[1])  # the same recipe: loaded from the cache
    assert not np.allclose(probs[0], probs[2])  # more steps: fitted again and cached
    assert ckpt.load_checkpoint(cache)["recipe"]["steps"] == 30
