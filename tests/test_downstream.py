import json

import numpy as np
import pytest
from makers import KEEP_ALL, make_image_folder, make_npz, tiny_config

from augment.cli import main
from augment.downstream import build_arms, evaluate_arms, gap_closed, mixed_fill, smote, summarise, tail_classes
from augment.pipeline import run_pipeline


def test_arms_and_metrics_on_separable_data():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [30, 8, 4])
    x = np.zeros((len(y), 1, 8, 8), np.uint8)
    for i, c in enumerate(y):
        x[i, 0, c * 2:(c * 2) + 2, :] = 200 + rng.integers(0, 50)
    arms = build_arms(x, y, seed=0, x_aug=x[y == 2], y_aug=y[y == 2], x_syn=x, y_syn=y, x_full=x, y_full=y)
    assert set(arms) == {"imbalanced", "random oversampling", "class-weighted", "smote", "augmented",
                         "synthetic only", "full balanced (upper bound)"}
    assert np.bincount(arms["random oversampling"].labels).tolist() == [30, 30, 30]
    assert np.bincount(arms["smote"].labels).tolist() == [30, 30, 30]
    assert arms["smote"].images.dtype == np.uint8
    df = evaluate_arms(arms, x, y, 3, tail_classes(y, 3), ("logreg",), seed=0)
    assert (df["balanced_accuracy"] == 1.0).all() and (df["tail_recall"] == 1.0).all()
    gaps = gap_closed(summarise(df), "logreg")
    assert gaps["upper_bound"] == 1.0 and gaps["augmented_minus_random_oversampling"] == 0.0


def test_a_mixed_arm_caps_synthetic_images_at_a_ratio_of_real_ones_and_oversamples_the_rest():
    y = np.repeat([0, 1], [10, 2])
    x = np.full((12, 1, 2, 2), 7, np.uint8)  # real images are 7s
    y_aug = np.repeat([1], 8)
    x_aug = np.full((8, 1, 2, 2), 200, np.uint8)  # synthetic ones are 200s
    arm = mixed_fill(x, y, x_aug, y_aug, ratio=1.5, seed=0)
    assert np.bincount(arm.labels).tolist() == [10, 10]  # the augmented arm's sizes
    ones = arm.images[arm.labels == 1][:, 0, 0, 0]
    assert (ones == 200).sum() == 3 and (ones == 7).sum() == 7  # 1.5 x 2 real = 3 synthetic, 5 real again
    arms = build_arms(x, y, 0, x_aug=x_aug, y_aug=y_aug, mix_ratios=(1.5,))
    assert "augmented, synthetic <= 1.5x real" in arms
    df = evaluate_arms(arms, x, y, 2, [1], ("logreg",), seed=0)
    assert df["arm"].iloc[-1] == "augmented, synthetic <= 1.5x real"  # extra arms come after the standard ones


def test_smote_interpolates_within_a_class():
    x = np.array([[0], [10], [20], [100], [110]], dtype=np.uint8).reshape(5, 1, 1, 1)
    y = np.array([0, 0, 0, 1, 1])
    xs, ys = smote(x, y, seed=0)
    new = xs[5:].reshape(-1)
    assert (ys[5:] == 1).all() and ((new >= 100) & (new <= 110)).all()


def test_tail_classes_are_the_smallest():
    assert tail_classes(np.repeat([0, 1, 2, 3], [5, 50, 2, 9]), 4) == [0, 2, 3]


@pytest.mark.slow
def test_evaluate_command_on_a_finished_run(tmp_path, capsys):
    folder = make_image_folder(tmp_path / "ds", {"0": 6, "1": 3}, size=8)
    run_pipeline(str(folder), tiny_config(*KEEP_ALL), tmp_path / "run")
    test = make_npz(tmp_path / "test.npz", [5, 5])
    assert main(["evaluate", "--run", str(tmp_path / "run"), "--test", f"{test}", "--cnn-steps", "5"]) == 0
    out = capsys.readouterr().out
    assert "augmented" in out and "smote" in out
    result = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    assert {r["arm"] for r in result["summary"]} >= {"imbalanced", "augmented", "smote"}
    assert {r["classifier"] for r in result["summary"]} == {"logreg", "cnn"}
    assert "Downstream evaluation" in (tmp_path / "run" / "report.md").read_text()


def test_evaluate_refuses_test_classes_the_run_does_not_know(tmp_path, capsys):
    folder = make_image_folder(tmp_path / "ds", {"0": 6, "1": 3}, size=8)
    run_pipeline(str(folder), tiny_config(*KEEP_ALL), tmp_path / "run")
    test = make_npz(tmp_path / "test.npz", [2, 2, 2])
    assert main(["evaluate", "--run", str(tmp_path / "run"), "--test", f"{test}", "--classifiers", "logreg"]) == 2
    assert "has classes ['2'] that the run does not know" in capsys.readouterr().err
