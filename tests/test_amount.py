"""How much synthetic data a run keeps, the weights it writes, and the 'auto' choice on held-out images."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from makers import KEEP_ALL, make_image_folder, tiny_config

from augment.amount import AmountChoice, choose_share, sample_weights, synthetic_quota
from augment.errors import ConfigError
from augment.pipeline import run_pipeline


def test_a_share_caps_each_class_at_a_multiple_of_its_real_images():
    plan = {"cat": 0, "dog": 97, "eel": 10}
    counts = {"cat": 100, "dog": 3, "eel": 40}
    assert synthetic_quota(plan, counts, 1) == {"cat": 0, "dog": 3, "eel": 10}
    assert synthetic_quota(plan, counts, 0.5) == {"cat": 0, "dog": 1, "eel": 10}
    assert synthetic_quota(plan, counts, 0) == {"cat": 0, "dog": 0, "eel": 0}
    assert synthetic_quota(plan, counts, "full") == plan == synthetic_quota(plan, counts, "auto")


def test_weights_balance_the_classes_in_expectation_and_down_weight_synthetic_rows():
    labels = np.array([0] * 6 + [1] * 2 + [1] * 3 + [1])
    synthetic = np.array([False] * 8 + [True] * 4)
    kept = np.array([True] * 11 + [False])
    w = sample_weights(labels, synthetic, kept, np.array([6, 6]), synthetic_weight=0.5)
    assert w[labels == 0].sum() == pytest.approx(6) and w[labels == 1].sum() == pytest.approx(6)
    assert w[8] == pytest.approx(0.5 * w[6])  # a kept synthetic row: half a real row of its class
    assert w[11] == 0  # not kept


def test_weights_in_the_manifest_make_a_weighted_sampler_draw_balanced_classes(tmp_path):
    folder = make_image_folder(tmp_path / "ds", {"cat": 8, "dog": 3}, size=8)
    run_pipeline(str(folder), tiny_config(*KEEP_ALL, "balance.synthetic_share=1"), tmp_path / "out")
    m = pd.read_parquet(tmp_path / "out" / "manifest.parquet")
    kept_syn = m[m.is_synthetic & m.kept]
    assert len(kept_syn) == 3  # dog: 3 real images x share 1, the rest of its plan of 5 met by weights
    totals = m.groupby("class_name")["weight"].sum()
    assert totals["cat"] == pytest.approx(8) and totals["dog"] == pytest.approx(8)
    assert (m.loc[m.is_synthetic & ~m.kept, "weight"] == 0).all()
    # what a user does with it: a WeightedRandomSampler over the rows draws the classes equally often
    sampler = torch.utils.data.WeightedRandomSampler(torch.tensor(m["weight"].to_numpy()), 20_000,
                                                     generator=torch.Generator().manual_seed(0))
    drawn = m["label"].to_numpy()[list(sampler)]
    assert abs((drawn == 0).mean() - 0.5) < 0.02


def test_sklearn_takes_the_weights_as_sample_weight(finished_run):
    from PIL import Image
    from sklearn.linear_model import LogisticRegression

    m = pd.read_parquet(finished_run / "manifest.parquet")
    rows = m[m["weight"] > 0]
    x = np.stack([np.asarray(Image.open(finished_run / p)).ravel() for p in rows.path]) / 255.0
    clf = LogisticRegression(max_iter=200).fit(x, rows["label"], sample_weight=rows["weight"])
    assert set(clf.classes_) == {0, 1}


@pytest.fixture
def separable():
    """Horizontal bars (60) against vertical bars (30): a probe needs no synthetic image to tell them apart."""
    from makers import bars

    from augment.data.labeled import LabeledImages

    x = torch.stack([torch.from_numpy(bars(0, 8, seed=i)) for i in range(60)]
                    + [torch.from_numpy(bars(1, 8, seed=i)) for i in range(30)])[:, None]
    y = torch.tensor([0] * 60 + [1] * 30)
    return LabeledImages(x, y, ["h", "v"], [f"b{i}" for i in range(90)])


def test_the_cnn_probe_can_decide_alone_and_the_record_says_which_judged(separable):
    noise = torch.randint(0, 256, (60, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    choice = choose_share(separable, noise, np.ones(60, dtype=np.int64), 1.0, seed=0, probe_steps=10, probe_seeds=1,
                          probe_classifiers="cnn")
    assert choice.to_dict()["classifiers"] == ["cnn"] and "judged by the SmallCNN" in choice.reason
    assert "logistic regression" not in choice.reason


def test_a_cnn_probe_without_steps_is_refused():
    with pytest.raises(ConfigError, match="balance.probe_steps = 0 turns off"):
        tiny_config("balance.probe_classifiers=cnn", "balance.probe_steps=0")


def test_auto_keeps_none_when_synthetic_images_do_not_help(separable):
    noise = torch.randint(0, 256, (60, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    choice = choose_share(separable, noise, np.ones(60, dtype=np.int64), 1.0, seed=0, probe_steps=0, probe_seeds=2,
                          probe_classifiers="logreg")
    assert isinstance(choice, AmountChoice) and choice.share == 0.0
    assert "no share beat none" in choice.reason and choice.holdout == {"h": 12, "v": 6}
    assert [r["share"] for r in choice.curve] == ["0x", "0.5x", "1x", "2x", "full"]
    assert all(r["low"] <= r["minus_none"] <= r["high"] for r in choice.curve)
    assert choice.to_dict()["curve"][-1]["share_value"] is None and math.isinf(choice.curve[-1]["share_value"])


def test_auto_adds_nothing_when_too_few_images_are_held_out(separable):
    few = separable.subset(np.r_[0:60, 60:75])  # 15 vertical bars: 3 held out
    noise = torch.zeros(10, 1, 8, 8, dtype=torch.uint8)
    choice = choose_share(few, noise, np.ones(10, dtype=np.int64), 1.0, seed=0, probe_steps=0,
                          probe_classifiers="logreg")
    assert choice.share == 0.0 and "too few held-out" in choice.reason and choice.curve == []


def test_the_run_says_before_training_when_auto_cannot_measure_a_gain(separable):
    from augment.amount import auto_forecast

    few = separable.subset(np.r_[0:60, 60:75])  # 3 vertical bars held out: too few to measure on
    note = auto_forecast(few, {"h": 0, "v": 45}, seed=0)
    assert "['v']" in note and "balance.synthetic_share" in note and "will add no synthetic images" in note
    assert auto_forecast(separable, {"h": 0, "v": 30}, seed=0) is None  # 6 held out: enough


def test_auto_refuses_a_class_with_no_image_to_hold_out(tmp_path):
    folder = make_image_folder(tmp_path / "ds", {"cat": 8, "dog": 2}, size=8)
    with pytest.raises(ConfigError, match="balance.synthetic_share"):
        run_pipeline(str(folder), tiny_config(*KEEP_ALL, 'balance.synthetic_share="auto"'), tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.augment-work").exists()


@pytest.mark.parametrize("bad", ["-1", '"some"', "1001"])
def test_bad_shares_are_refused_naming_the_key(bad):
    with pytest.raises(ConfigError, match="'balance.synthetic_share'"):
        tiny_config(f"balance.synthetic_share={bad}")


def test_auto_run_records_its_choice_and_a_rerun_reuses_it(tmp_path, monkeypatch):
    import augment.stages.amount as amount_stage

    folder = make_image_folder(tmp_path / "ds", {"cat": 9, "dog": 4}, size=8)
    cfg = tiny_config(*KEEP_ALL, 'balance.synthetic_share="auto"')
    calls = []
    real_choose = amount_stage.choose_share
    monkeypatch.setattr(amount_stage, "choose_share", lambda *a, **k: calls.append(1) or real_choose(*a, **k))
    from augment.layout import RunLayout
    from augment.stages import stage_amount, stage_generate, stage_load, stage_score, stage_train

    layout = RunLayout.for_output(tmp_path / "out")
    stage_load(str(folder), cfg, layout)
    train = stage_train(cfg, layout)
    stage_generate(cfg, layout, 0)
    stage_score(cfg, layout)
    first = stage_amount(cfg, layout)
    again = stage_amount(cfg, layout)
    assert calls == [1] and first == again
    assert first["setting"] == "auto" and first["holdout"] == {"cat": 2, "dog": 1}
    assert first["share"] == "0x" and "too few held-out" in first["reason"]
    assert train["runs"]["all"]["step"] == 2


def test_a_share_that_loses_ends_the_probe_and_its_cost_is_stated(separable):
    from makers import bars

    from augment.amount import probe_cost_bound

    wrong = torch.stack([torch.from_numpy(bars(0, 8, seed=100 + i)) for i in range(60)])[:, None]  # 'h' drawn as 'v'
    choice = choose_share(separable, wrong, np.ones(60, dtype=np.int64), 1.0, seed=0, probe_steps=0, probe_seeds=2,
                          probe_classifiers="logreg")
    assert choice.share == 0.0 and [r["share"] for r in choice.curve] == ["0x", "0.5x"]
    assert choice.curve[-1]["high"] <= 0 < -choice.curve[-1]["minus_none"]
    assert "larger shares were not tried" in choice.reason
    assert choice.cost["trainings"] == 2 and choice.cost["stopped_after"] == "0.5x"  # one logistic regression a share
    assert "probe: 2 trainings" in choice.reason and choice.cost["trainings"] <= probe_cost_bound("logreg", 2, 0)


def test_the_probe_cost_bound_counts_every_training_it_may_make():
    from augment.amount import CANDIDATE_SHARES, probe_cost_bound

    assert probe_cost_bound("logreg,cnn", 3, 500) == (1 + 3) * len(CANDIDATE_SHARES)
    assert probe_cost_bound("logreg,cnn", 3, 0) == len(CANDIDATE_SHARES)  # no CNN steps: logistic regression only
    assert probe_cost_bound("cnn", 2, 100) == 2 * len(CANDIDATE_SHARES)


def test_auto_is_judged_by_a_cnn_unless_logistic_regression_is_asked_for(separable):
    from augment.config import build_config

    assert build_config().balance.probe_classifiers == "cnn"  # the kind of classifier users train on images
    noise = torch.zeros(60, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(ConfigError, match="leaves 'auto' no probe"):
        choose_share(separable, noise, np.ones(60, dtype=np.int64), 1.0, seed=0, probe_steps=0)


@pytest.mark.parametrize("probes", ["cnn", "logreg,cnn"])
def test_shares_that_gain_nothing_on_the_first_probe_seed_are_not_trained_on_the_others(separable, monkeypatch,
                                                                                         probes):
    """The probe screens every share on one seed and trains the rest only for the ones that gained there:
    here only 0.5x gains (it gets the held-out vertical bars right), so 1x, 2x and full cost one training each.
    Logistic regression does not depend on the seed: it is fitted once a share."""
    import augment.amount as amount

    held_y = separable.labels.numpy()[amount.probe_split(separable, 0)[1]]
    calls = []

    def fake_probe(real, train, held, syn_images, syn_labels, weight, classifiers, seeds, steps, device):
        calls.append((len(syn_labels), list(seeds), list(classifiers)))
        helps = len(syn_labels) == 12  # 0.5x of the 24 vertical bars the probe trains on
        right = np.where(held_y == 1, helps, True)  # without help, every held-out vertical bar is missed
        return np.broadcast_to(right, (len(seeds), len(classifiers), len(held_y))).copy()

    monkeypatch.setattr(amount, "_probe", fake_probe)
    syn = torch.zeros(100, 1, 8, 8, dtype=torch.uint8)
    choice = choose_share(separable, syn, np.ones(100, dtype=np.int64), 1.0, seed=0, probe_steps=10, probe_seeds=3,
                          probe_classifiers=probes)
    every = probes.split(",")
    assert calls == [(n, [0], every) for n in (0, 12, 24, 48, 100)] + [(n, [1, 2], ["cnn"]) for n in (0, 12)]
    assert choice.share == 0.5 and choice.cost["trainings"] == 5 * len(every) + 2 * 2
    assert [r["probe_seeds"] for r in choice.curve] == [3, 3, 1, 1, 1]
    assert choice.cost["screened_out"] == ["1x", "2x", "full"]
    assert "gained nothing on the first probe seed" in choice.reason


def test_auto_adds_synthetic_images_that_teach_the_probe_what_the_real_ones_do_not():
    """Noise in both classes: no classifier tells them apart from the real images, so copies of the held-out
    vertical ones (what a generator that saw them would make) lift held-out accuracy, and 'auto' keeps some."""
    from augment.amount import probe_split
    from augment.data.labeled import LabeledImages

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (90, 1, 8, 8), dtype=torch.uint8, generator=g)
    real = LabeledImages(x, torch.tensor([0] * 60 + [1] * 30), ["a", "b"], [f"n{i}" for i in range(90)])
    held = probe_split(real, 0)[1]
    copies = x[held[real.labels.numpy()[held] == 1]].repeat(8, 1, 1, 1)
    choice = choose_share(real, copies, np.ones(len(copies), dtype=np.int64), 1.0, seed=0, probe_steps=200,
                          probe_seeds=2, probe_classifiers="cnn")
    assert choice.share > 0 and "was the largest share that beat none" in choice.reason
    assert all(r["probe_seeds"] == 2 for r in choice.curve if r["share_value"] == choice.share)
