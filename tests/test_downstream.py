import json

import numpy as np
import pandas as pd
import pytest
from makers import KEEP_ALL, make_image_folder, make_npz, tiny_config

from augment.cli import main
from augment.downstream import (
    Arm,
    build_arms,
    deferred_mix,
    evaluate_arms,
    fit_predict,
    gap_closed,
    logit_adjusted_mix,
    matched_noise_arms,
    mixed_fill,
    output_arms,
    paired_differences,
    smote,
    summarise,
    tail_classes,
)
from augment.pipeline import run_pipeline


def test_arms_and_metrics_on_separable_data():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [30, 8, 4])
    x = np.zeros((len(y), 1, 8, 8), np.uint8)
    for i, c in enumerate(y):
        x[i, 0, c * 2:(c * 2) + 2, :] = 200 + rng.integers(0, 50)
    arms = build_arms(x, y, seed=0, x_aug=x[y == 2], y_aug=y[y == 2], x_syn=x, y_syn=y, x_full=x, y_full=y)
    assert set(arms) == {"imbalanced", "random oversampling", "class-weighted", "smote", "logit-adjusted",
                         "deferred re-weighting", "augmented", "class-weighted + synthetic",
                         "deferred re-weighting + synthetic", "augmented, finished on real", "synthetic only",
                         "full balanced (upper bound)"}
    assert np.bincount(arms["random oversampling"].labels).tolist() == [30, 30, 30]
    assert np.bincount(arms["smote"].labels).tolist() == [30, 30, 30]
    assert arms["smote"].images.dtype == np.uint8
    df = evaluate_arms(arms, x, y, 3, tail_classes(y, 3), ("logreg",), seed=0)
    assert not {"deferred re-weighting", "augmented, finished on real"} & set(df["arm"])  # the CNN's arms only
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
    assert df["arm"].iloc[-2:].tolist() == ["augmented, synthetic <= 1.5x real",  # extra arms come after
                                            "logit-adjusted + synthetic <= 1.5x real"]  # the standard ones
    assert "deferred re-weighting + synthetic <= 1.5x real" in arms  # the CNN's only: not in logreg's rows


def test_the_logit_adjusted_mix_adds_capped_synthetic_images_and_adjusts_by_the_prior_they_leave():
    y = np.repeat([0, 1], [10, 2])
    x = np.full((12, 1, 2, 2), 7, np.uint8)
    y_aug = np.repeat([1], 8)
    x_aug = np.full((8, 1, 2, 2), 200, np.uint8)
    arm = logit_adjusted_mix(x, y, x_aug, y_aug, ratio=1.5)
    assert np.bincount(arm.labels).tolist() == [10, 5]  # 2 real + 3 synthetic ones; no oversampling
    assert (arm.images[arm.labels == 1][:, 0, 0, 0] == 200).sum() == 3
    assert arm.logit_adjusted and arm.weights is None  # plain draws, the 10:5 prior taken off at prediction


def test_the_deferred_mix_draws_real_images_first_then_real_and_capped_synthetic_ones_balanced():
    y = np.repeat([0, 1], [10, 2])
    x = np.full((12, 1, 2, 2), 7, np.uint8)
    arm = deferred_mix(x, y, np.full((8, 1, 2, 2), 200, np.uint8), np.repeat([1], 8), ratio=1.5)
    assert arm.deferred and arm.early_rows == 12  # the plain phase: the real rows only
    assert np.bincount(arm.labels).tolist() == [10, 5]
    assert np.isclose(arm.weights[arm.labels == 0].sum(), arm.weights[arm.labels == 1].sum())  # balanced after


def test_the_output_is_used_with_its_manifest_weights_from_the_start_or_in_the_deferred_phase_only():
    y, y_aug = np.repeat([0, 1], [10, 2]), np.repeat([1], 4)
    x, x_aug = np.full((12, 1, 2, 2), 7, np.uint8), np.full((4, 1, 2, 2), 200, np.uint8)
    weights = np.concatenate([np.full(10, 0.1), np.full(2, 0.3), np.full(4, 0.1)])  # synthetic weight 1/3
    arms = output_arms(x, y, x_aug, y_aug, weights)
    assert set(arms) == {"augmented", "deferred re-weighting + synthetic",
                         "deferred re-weighting + synthetic, finished on real"}
    for arm in arms.values():
        assert np.array_equal(arm.weights, weights) and len(arm.labels) == 16
    late = arms["deferred re-weighting + synthetic"]
    assert late.deferred and late.early_rows == 12 and late.real_rows is None  # first phase: real rows only
    crt = arms["deferred re-weighting + synthetic, finished on real"]
    assert crt.deferred and crt.real_rows == 12
    assert set(output_arms(x, y, x_aug[:0], y_aug[:0], weights[:12])) == {"augmented"}


def test_the_matched_noise_control_has_the_outputs_counts_weights_and_schedule_but_no_content():
    y, y_aug = np.repeat([0, 1, 2], [10, 3, 2]), np.repeat([1, 2], [2, 5])
    x = np.random.default_rng(0).integers(0, 256, (15, 1, 4, 4)).astype(np.uint8)
    weights = np.concatenate([np.ones(15), np.full(2, 0.4), np.full(5, 0.2)])
    arms = matched_noise_arms(x, y, y_aug, weights, seed=0)
    weighted, late = arms["noise, as the output"], arms["deferred re-weighting + noise, as the output"]
    assert np.bincount(weighted.labels[15:]).tolist() == [0, 2, 5]  # the output's synthetic count per class
    assert np.array_equal(weighted.images[:15], x)
    assert np.allclose(weighted.weights[15:][weighted.labels[15:] == 1], 0.4)
    assert np.allclose(weighted.weights[15:][weighted.labels[15:] == 2], 0.2)
    assert late.deferred and late.early_rows == 15
    assert not any(np.array_equal(n, r) for n in weighted.images[15:] for r in x)  # noise, not copies
    assert matched_noise_arms(x, y, y_aug[:0], weights[:15], seed=0) == {}


def test_logit_adjustment_moves_the_boundary_towards_the_majority_class():
    # two overlapping classes, 9:1: the plain model sends the overlap to the majority, the adjusted one
    # subtracts the log prior and recovers minority recall
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], [450, 50])
    x = np.clip(rng.normal(np.where(y == 1, 140, 110)[:, None], 40, (len(y), 4)), 0, 255).astype(np.uint8)
    x = x.reshape(-1, 1, 2, 2)
    x_test = np.clip(rng.normal(np.repeat([110, 140], 300)[:, None], 40, (600, 4)), 0, 255).astype(np.uint8)
    plain = fit_predict("logreg", Arm(x, y), x_test.reshape(-1, 1, 2, 2), 2, 0)
    adjusted = fit_predict("logreg", Arm(x, y, logit_adjusted=True), x_test.reshape(-1, 1, 2, 2), 2, 0)
    assert (adjusted[300:] == 1).mean() > (plain[300:] == 1).mean() + 0.2
    assert (adjusted == 1).sum() > (plain == 1).sum()


def test_deferred_arm_draws_only_the_early_rows_before_it_re_weights(monkeypatch):
    from augment.score import cnn

    seen, real_forward = [], cnn.SmallCNN.forward

    def forward(self, x):  # records the brightest pixel of every training batch
        seen.append(x.detach().amax().item())
        return real_forward(self, x)

    monkeypatch.setattr(cnn.SmallCNN, "forward", forward)
    x = np.concatenate([np.full((20, 1, 8, 8), 10, np.uint8), np.full((20, 1, 8, 8), 250, np.uint8)])
    y = np.repeat([0, 1], 20)
    arm = Arm(x, y, weights=np.ones(40), deferred=True, early_rows=20)  # rows 20.. (bright) enter late
    fit_predict("cnn", arm, x[:2], 2, 0, cnn_steps=8, cnn_width=4, augmentation="none")
    assert max(seen[:6]) < 0.1 and min(seen[6:]) > 0.9  # 0.75 x 8 = 6 early steps of dark rows only


def test_finishing_on_real_refits_only_the_head_on_the_real_rows():
    import torch

    from augment.score import cnn

    # synthetic rows (label 1) look like class 0: trained on everything, the network calls 0-like images 1;
    # with its head re-fitted on the real rows only, it reads them as the real data says
    x = np.concatenate([np.full((20, 1, 8, 8), 10, np.uint8), np.full((20, 1, 8, 8), 250, np.uint8),
                        np.full((40, 1, 8, 8), 10, np.uint8)])
    y = np.repeat([0, 1, 1], [20, 20, 40])
    model = cnn.train_cnn(torch.from_numpy(x), torch.from_numpy(y), 2, steps=60, width=4, balanced=False)
    assert (cnn.predict(model, torch.from_numpy(x[:20]))[0].argmax(1) == 1).all()  # misled by the synthetic rows
    body = [p.detach().clone() for p in model.body.parameters()]
    cnn.retrain_head(model, torch.from_numpy(x[:40]), torch.from_numpy(y[:40]), steps=150, augmentation="none")
    assert all(torch.equal(a, b) for a, b in zip(body, model.body.parameters()))  # the features stay
    pred = cnn.predict(model, torch.from_numpy(x[:40]))[0].argmax(1)
    assert (pred[:20] == 0).mean() == 1.0 and (pred[20:] == 1).mean() == 1.0
    # Through the arm (100 head steps: 40 were enough in bf16, not in fp32 on a CPU without AMX)
    plain, finished = Arm(x, y, weights=np.ones(len(y))), Arm(x, y, weights=np.ones(len(y)), real_rows=40)
    assert (fit_predict("cnn", plain, x[:40], 2, 0, cnn_steps=500, cnn_width=4)[:20] == 1).all()
    assert (fit_predict("cnn", finished, x[:40], 2, 0, cnn_steps=500, cnn_width=4)[:20] == 0).all()


def test_standard_augmentation_rotates_and_shifts_within_its_bounds():
    import torch

    from augment.score.cnn import augment_batch

    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 4:24, 13:15] = 1.0  # a vertical bar
    out = augment_batch(x, "standard", torch.Generator().manual_seed(0))
    assert out.shape == x.shape and not torch.equal(out, x)
    moved_rows = (out[:, 0].sum(2) > 0.5).float().argmax(1)  # first row holding ink
    assert moved_rows.min() >= 1 and moved_rows.max() <= 7  # +-2 px and a small tilt, not more
    with pytest.raises(ValueError, match="augmentation 'flip'"):
        augment_batch(x, "flip", torch.Generator())


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
    result = json.loads((tmp_path / "run" / "downstream.json").read_text())
    assert {r["arm"] for r in result["summary"]} >= {"imbalanced", "augmented", "smote"}
    assert {r["classifier"] for r in result["summary"]} == {"logreg", "cnn"}
    assert "Downstream evaluation" in (tmp_path / "run" / "report.md").read_text()


def test_evaluate_refuses_test_classes_the_run_does_not_know(tmp_path, capsys):
    folder = make_image_folder(tmp_path / "ds", {"0": 6, "1": 3}, size=8)
    run_pipeline(str(folder), tiny_config(*KEEP_ALL), tmp_path / "run")
    test = make_npz(tmp_path / "test.npz", [2, 2, 2])
    assert main(["evaluate", "--run", str(tmp_path / "run"), "--test", f"{test}", "--classifiers", "logreg"]) == 2
    assert "has classes ['2'] that the run does not know" in capsys.readouterr().err


def test_rows_merged_from_runs_of_different_length_pair_on_their_common_seeds():
    y_test = np.array([0, 1] * 50)
    right, wrong = y_test.copy(), 1 - y_test
    predictions = {("cnn", "random oversampling", s): wrong for s in (0, 1, 2)}
    predictions.update({("cnn", "augmented [other recipe]", s): right for s in (0, 1)})  # a run of two seeds
    runs = pd.DataFrame([{"classifier": c, "arm": a, "seed": s, "balanced_accuracy": float((p == y_test).mean()),
                          "macro_f1": 0.0, "tail_recall": 0.0} for (c, a, s), p in predictions.items()])
    paired = paired_differences(y_test, predictions, summarise(runs)).set_index("arm")
    assert paired.loc["augmented [other recipe]", "minus_random_oversampling"] == pytest.approx(1.0)
