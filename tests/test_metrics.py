import numpy as np
import pytest

from augment.score.metrics import METRICS, MetricInputs, nearest_distance, quality_table


def inputs(real, fake, labels=None, pred=None, k=2, threshold=0.5):
    labels = np.zeros(len(fake), dtype=int) if labels is None else labels
    return MetricInputs(real, fake, labels, labels if pred is None else pred, k, threshold)


@pytest.fixture
def cloud():
    return np.random.default_rng(0).normal(size=(200, 8))


def test_registry_holds_every_metric():
    assert {"ext_accuracy", "frechet_distance", "precision_recall", "density_coverage", "memorisation",
            "class_balance_kl"} <= set(METRICS)


def test_identical_sets(cloud):
    m = inputs(cloud, cloud.copy())
    assert METRICS["frechet_distance"](m)["frechet_distance"] == pytest.approx(0, abs=1e-4)
    assert METRICS["precision_recall"](m) == {"precision": 1.0, "recall": 1.0}
    dc = METRICS["density_coverage"](m)
    assert dc["coverage"] == 1.0 and dc["density"] >= 0.9
    assert METRICS["memorisation"](m)["memorisation"] == 1.0
    assert METRICS["spread"](m)["spread"] == pytest.approx(1.0)


def test_spread_reads_a_narrower_synthetic_set_as_less_diverse(cloud):
    assert METRICS["spread"](inputs(cloud, 0.5 * cloud))["spread"] == pytest.approx(0.5)
    assert np.isnan(METRICS["spread"](inputs(cloud, cloud[:1]))["spread"])  # one image has no spread to measure


def test_disjoint_sets(cloud):
    m = inputs(cloud, cloud + 100.0)
    assert METRICS["frechet_distance"](m)["frechet_distance"] == pytest.approx(8 * 100.0 ** 2, rel=1e-3)
    assert METRICS["precision_recall"](m) == {"precision": 0.0, "recall": 0.0}
    assert METRICS["density_coverage"](m) == {"density": 0.0, "coverage": 0.0}
    assert METRICS["memorisation"](m)["memorisation"] == 0.0


def test_same_distribution_other_samples_scores_between(cloud):
    other = np.random.default_rng(1).normal(size=(200, 8))
    m = inputs(cloud, other)
    pr = METRICS["precision_recall"](m)
    assert 0.5 < pr["precision"] <= 1 and 0.5 < pr["recall"] <= 1
    assert METRICS["frechet_distance"](m)["frechet_distance"] < 2.0


def test_accuracy_and_balance():
    labels = np.array([0, 0, 1, 1])
    assert METRICS["ext_accuracy"](inputs(np.zeros((1, 2)), np.zeros((4, 2)), labels, np.array([0, 1, 1, 1])))[
        "ext_accuracy"] == 0.75
    kl = METRICS["class_balance_kl"]
    assert kl(inputs(np.zeros((1, 2)), np.zeros((4, 2)), labels, labels))["class_balance_kl"] == pytest.approx(0)
    assert kl(inputs(np.zeros((1, 2)), np.zeros((4, 2)), labels, np.zeros(4, dtype=int)))[
        "class_balance_kl"] == pytest.approx(np.log(2))


def test_nearest_distance_excludes_self():
    x = np.array([[0.0], [1.0], [3.0]])
    assert nearest_distance(x, x).tolist() == [0, 0, 0]
    assert nearest_distance(x, x, exclude_self=True).tolist() == [1, 1, 2]


def test_quality_table_has_a_row_per_class_and_overall(cloud):
    labels = np.repeat([0, 1], 100)
    m = inputs(cloud, cloud.copy(), labels)
    table = quality_table(cloud, labels, m, ["a", "b"])
    assert table["class"].tolist() == ["a", "b", "all"]
    assert (table["precision"] == 1.0).all() and table.loc[2, "class_balance_kl"] == pytest.approx(0)
