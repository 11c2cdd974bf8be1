import numpy as np
import pytest

from augment.config import SelectConfig
from augment.score.manifold import inside_class_manifold, pass_counts
from augment.select import select


def test_keeps_passing_candidates_in_latent_order_and_reports_shortfall():
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    aux = np.array([0.9, 0.2, 0.8, 0.95, 0.6, 0.7, 0.1])
    latent = np.array([2, 1, 0, 0, 1, 2, 3])
    sel = select(labels, {0: 2, 1: 2}, SelectConfig(min_aux_prob=0.5), aux_prob=aux, latent_index=latent)
    assert sel.kept.tolist() == [True, False, True, True, True, False, False]
    assert sel.reason.tolist() == ["", "aux_prob", "", "", "", "surplus", "aux_prob"]
    assert sel.shortfall == {}
    sel = select(labels, {0: 3, 1: 4}, SelectConfig(min_aux_prob=0.5), aux_prob=aux, latent_index=latent)
    assert sel.kept.sum() == 5 and sel.shortfall == {0: 1, 1: 1}


def test_each_check_rejects_with_its_reason():
    labels = np.zeros(6, dtype=int)
    feats = np.array([[0.0], [10.0], [20.0], [20.05], [30.0], [40.0]])
    sel = select(labels, {0: 6}, SelectConfig(min_aux_prob=0.5, min_ext_prob=0.5),
                 aux_prob=np.array([0.1, 0.9, 0.9, 0.9, 0.9, 0.9]),
                 ext_prob=np.array([0.9, 0.2, 0.9, 0.9, 0.9, 0.9]),
                 ext_pred=np.array([0, 0, 0, 0, 1, 0]),
                 nn_distance=np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.01]),
                 features=feats, copy_threshold=0.1)
    assert sel.reason.tolist() == ["aux_prob", "ext_prob", "", "duplicate", "ext_disagrees", "near_copy"]
    assert sel.kept.tolist() == [False, False, True, False, False, False]
    assert sel.shortfall == {0: 5}


def test_checks_can_be_switched_off():
    labels = np.zeros(3, dtype=int)
    cfg = SelectConfig(min_aux_prob=0, min_ext_prob=0, require_agreement=False, reject_copies=False,
                       reject_duplicates=False)
    sel = select(labels, {0: 3}, cfg, aux_prob=np.zeros(3), ext_prob=np.zeros(3), ext_pred=np.ones(3, dtype=int),
                 nn_distance=np.zeros(3), features=np.zeros((3, 2)), copy_threshold=1.0)
    assert sel.kept.all()


def test_duplicate_check_spans_blocks():
    n = 1200  # more than one block of 512
    feats = np.repeat(np.arange(n // 2, dtype=float)[:, None], 2, axis=0)  # every point twice
    sel = select(np.zeros(n, dtype=int), {0: n}, SelectConfig(min_aux_prob=0), aux_prob=np.ones(n),
                 features=feats, copy_threshold=0.5)
    assert sel.kept.sum() == n // 2 and (sel.reason == "duplicate").sum() == n // 2


def test_kept_images_carry_their_rank_in_selection_order():
    labels = np.array([0, 0, 0, 1, 1])
    sel = select(labels, {0: 2, 1: 2}, SelectConfig(min_aux_prob=0.5), aux_prob=np.array([0.9, 0.9, 0.9, 0.1, 0.9]),
                 latent_index=np.array([2, 0, 1, 0, 1]))
    assert sel.rank.tolist() == [-1, 0, 1, -1, 0]


def test_manifold_gate_rejects_candidates_outside_every_real_ball_of_their_class():
    real = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    real_y = np.array([0, 0, 0, 1, 1, 1])
    feats = np.array([[1.5], [5.0], [11.0], [1.0]])  # the last is inside class 0's balls but meant as class 1
    labels = np.array([0, 0, 1, 1])
    inside = inside_class_manifold(feats, labels, real, real_y, k=1)
    assert inside.tolist() == [True, False, True, False]
    sel = select(labels, {0: 2, 1: 2}, SelectConfig(min_aux_prob=0), aux_prob=np.ones(4), on_manifold=inside)
    assert sel.reason.tolist() == ["", "off_manifold", "", "off_manifold"]
    assert pass_counts(inside, labels, ["zero", "one"]) == {"zero": {"scored": 2, "inside": 1},
                                                            "one": {"scored": 2, "inside": 1}}


def test_a_class_with_one_real_image_cannot_be_judged_by_the_gate():
    inside = inside_class_manifold(np.array([[100.0]]), np.array([0]), np.array([[0.0]]), np.array([0]), k=3)
    assert inside.tolist() == [True]


def test_informative_rank_takes_hard_candidates_first_and_spreads_them_out():
    # four easy candidates (p 0.99) and four hard ones (p 0.6) of one class; two of the hard ones coincide
    feats = np.array([[0.0], [0.1], [0.2], [0.3], [5.0], [5.0], [9.0], [20.0]])
    ext_prob = np.array([0.99, 0.99, 0.99, 0.99, 0.6, 0.6, 0.6, 0.6])
    cfg = SelectConfig(min_aux_prob=0, min_ext_prob=0.5, rank="informative", reject_duplicates=False)
    sel = select(np.zeros(8, dtype=int), {0: 3}, cfg, aux_prob=np.ones(8), ext_prob=ext_prob,
                 ext_pred=np.zeros(8, dtype=int), features=feats)
    assert sel.kept.tolist() == [False] * 4 + [True, False, True, True]  # the hard ones, the repeat left out
    # farthest from the mean first, then the farthest from it
    assert sel.rank[[7, 4, 6]].tolist() == [0, 1, 2]
    # random rank (the default) keeps latent order, whatever the loss
    cfg = SelectConfig(min_aux_prob=0, min_ext_prob=0.5, reject_duplicates=False)
    sel = select(np.zeros(8, dtype=int), {0: 3}, cfg, aux_prob=np.ones(8), ext_prob=ext_prob,
                 ext_pred=np.zeros(8, dtype=int), features=feats)
    assert sel.kept.tolist() == [True] * 3 + [False] * 5


def test_coverage_rank_takes_what_the_real_images_leave_empty_first():
    # real images of class 0 sit at 0, 1 and 2; two candidates fall among them, two beyond them
    real = np.array([[0.0], [1.0], [2.0], [50.0]])
    real_labels = np.array([0, 0, 0, 1])  # class 1's real image is no cover for class 0
    feats = np.array([[0.5], [1.5], [10.0], [6.0]])
    cfg = SelectConfig(min_aux_prob=0, rank="coverage", reject_duplicates=False)
    sel = select(np.zeros(4, dtype=int), {0: 2}, cfg, aux_prob=np.ones(4), features=feats,
                 real_features=real, real_labels=real_labels)
    assert sel.kept.tolist() == [False, False, True, True]
    # farthest from the real images first, then the farthest from them and from it
    assert sel.rank[[2, 3]].tolist() == [0, 1]
    with pytest.raises(ValueError, match="coverage"):
        select(np.zeros(4, dtype=int), {0: 2}, cfg, aux_prob=np.ones(4), features=feats)


def test_informative_rank_needs_the_external_classifier():
    with pytest.raises(ValueError, match="informative"):
        select(np.zeros(2, dtype=int), {0: 1}, SelectConfig(rank="informative"), aux_prob=np.ones(2))
