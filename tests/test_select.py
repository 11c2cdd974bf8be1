import numpy as np

from augment.config import SelectConfig
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
