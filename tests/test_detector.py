import numpy as np
import torch
from makers import bars

from augment.score import detector
from augment.score.detector import detector_accuracy


def bar_set(n: int, first_seed: int) -> tuple[torch.Tensor, np.ndarray]:
    x = torch.from_numpy(np.stack([bars(i % 2, 12, seed=first_seed + i) for i in range(n)]))[:, None]
    return x, np.array([i % 2 for i in range(n)])


def test_the_detector_catches_noise_and_cannot_tell_real_from_real():
    real, real_y = bar_set(80, 0)
    noise = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (80, 1, 12, 12), dtype=np.uint8))
    caught = detector_accuracy(real, real_y, noise, real_y, ["horizontal", "vertical"], steps=100)
    assert caught["all"] > 0.95 and caught["horizontal"] > 0.9 and caught["vertical"] > 0.9
    other, other_y = bar_set(80, 1000)  # more real bars, drawn apart: nothing to detect
    fooled = detector_accuracy(real, real_y, other, other_y, ["horizontal", "vertical"], steps=100)
    assert 0.2 < fooled["all"] < 0.8


def test_a_class_with_too_few_images_has_no_figure():
    real, real_y = bar_set(40, 0)
    syn, syn_y = bar_set(6, 500)  # three of each class: under the four per side a figure needs
    found = detector_accuracy(real, real_y, syn, syn_y, ["horizontal", "vertical"], steps=10)
    assert np.isnan(found["horizontal"]) and np.isnan(found["vertical"]) and np.isnan(found["all"])


def zero_head(model):
    """A detector that learned nothing: every image gets the same output (p = 0.5)."""
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)
    return model


def test_a_detector_that_learned_nothing_is_retrained_and_never_reads_as_indistinguishable(monkeypatch):
    real, real_y = bar_set(80, 0)
    noise = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (80, 1, 12, 12), dtype=np.uint8))
    real_training, seeds = detector.cnn.train_cnn, []

    def dead_first(*args, seed, **kw):  # the first training gives every image the same output
        seeds.append(seed)
        model = real_training(*args, seed=seed, **kw)
        return zero_head(model) if len(seeds) == 1 else model

    monkeypatch.setattr(detector.cnn, "train_cnn", dead_first)
    caught = detector_accuracy(real, real_y, noise, real_y, ["horizontal", "vertical"], steps=100, seed=5)
    assert seeds == [5, 6] and caught["all"] > 0.95  # retrained with the next seed, which learned

    monkeypatch.setattr(detector.cnn, "train_cnn", lambda *args, **kw: zero_head(real_training(*args, **kw)))
    found = detector_accuracy(real, real_y, noise, real_y, ["horizontal", "vertical"], steps=10)
    assert np.isnan(found["all"]) and np.isnan(found["horizontal"])  # no figure, not 0.5
