"""Faults a scheduled run must survive: divergence, out-of-memory, a full disk."""

import errno
import json
from dataclasses import replace

import pytest
import torch
from makers import KEEP_ALL, bars, make_image_folder, tiny_config

from augment import png_files
from augment.data import LabeledImages
from augment.errors import OutputError
from augment.models import VARIANTS
from augment.models.registry import Variant, register_variant, unregister_variant
from augment.pipeline import run_pipeline
from augment.train import TrainingDiverged, train


@pytest.fixture
def bars8():
    x = torch.stack([torch.from_numpy(bars(i % 2, 8, seed=i)) for i in range(12)])[:, None]
    return LabeledImages(x, torch.tensor([i % 2 for i in range(12)]), ["h", "v"], [f"b{i}" for i in range(12)])


@pytest.fixture
def faulty_variant():
    """Register a copy of acgan whose discriminator loss is replaced on chosen calls."""
    made = []

    def make(name, fault):
        base = VARIANTS["acgan"]
        calls = {"n": 0}

        def d_loss(D, real, y_real, fake, y_fake, ctx):
            calls["n"] += 1
            loss, stats = base.d_loss(D, real, y_real, fake, y_fake, ctx)
            return fault(calls["n"], loss, real), stats

        register_variant(Variant(replace(base.rules, name=name), base.build, d_loss, base.g_loss, base.critic,
                                 base.class_probs))
        made.append(name)
        return calls

    yield make
    for name in made:
        unregister_variant(name)


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_nan_loss_rolls_back_with_a_lower_learning_rate(bars8, faulty_variant, tmp_path):
    faulty_variant("nan-once", lambda n, loss, real: loss * float("nan") if n == 7 else loss)
    cfg = tiny_config("model.variant=nan-once", "train.steps=12", "train.checkpoint_every=4",
                      "train.health_every=2", "train.lr=0.001")
    result = train(bars8, cfg, tmp_path / "run")
    assert result.step == 12 and result.rollbacks == 1
    events = [r for r in rows(tmp_path / "run" / "stats.jsonl") if r.get("event") == "rollback"]
    assert events == [{"step": 4, "event": "rollback", "detected_at": 8, "reason": "a NaN or infinite loss",
                       "lr": 0.0005, "rollbacks": 1}]
    state = torch.load(result.last_checkpoint, weights_only=True)
    assert state["opt_g"]["param_groups"][0]["lr"] == 0.0005 and state["health"] == {"rollbacks": 1}
    assert all(torch.isfinite(v).all() for v in state["generator"].values() if v.is_floating_point())


def test_divergence_before_the_first_checkpoint_restarts_from_the_initial_weights(bars8, faulty_variant, tmp_path):
    faulty_variant("nan-early", lambda n, loss, real: loss * float("inf") if n == 1 else loss)
    result = train(bars8, tiny_config("model.variant=nan-early", "train.steps=4", "train.checkpoint_every=4",
                                      "train.health_every=1"), tmp_path / "run")
    assert result.rollbacks == 1 and result.step == 4


def test_persistent_divergence_stops_with_a_clear_message(bars8, faulty_variant, tmp_path):
    faulty_variant("nan-always", lambda n, loss, real: loss * float("nan"))
    cfg = tiny_config("model.variant=nan-always", "train.steps=10", "train.health_every=2", "train.max_rollbacks=2",
                      "train.checkpoint_every=5")
    with pytest.raises(TrainingDiverged, match=r"diverged at step 2 \(a NaN or infinite loss\) again after 2 "
                                               r"rollback\(s\).*Try a lower train.lr"):
        train(bars8, cfg, tmp_path / "run")


class OneImageGenerator(torch.nn.Module):
    """A collapsed generator: the same image whatever the noise and label."""

    def __init__(self, channels, size):
        super().__init__()
        self.image = torch.nn.Parameter(torch.zeros(1, channels, size, size))

    def forward(self, z, y=None):
        return torch.tanh(self.image).expand(z.shape[0], -1, -1, -1)


def test_collapsed_generator_is_detected(bars8, tmp_path):
    base = VARIANTS["acgan"]
    def build(cfg, shape):
        return OneImageGenerator(shape.channels, shape.size), base.build(cfg, shape)[1]

    register_variant(Variant(replace(base.rules, name="collapsed"), build, base.d_loss, base.g_loss, base.critic,
                             base.class_probs))
    try:
        cfg = tiny_config("model.variant=collapsed", "train.steps=20", "train.health_every=2", "train.max_rollbacks=1")
        with pytest.raises(TrainingDiverged, match=r"generator collapse \(samples of a class spread 0\.0000 x"):
            train(bars8, cfg, tmp_path / "run")
    finally:
        unregister_variant("collapsed")


def test_out_of_memory_retries_with_a_smaller_batch(faulty_variant, tmp_path, caplog):
    def oom_when_large(n, loss, real):
        if real.shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return loss

    faulty_variant("oom-large", oom_when_large)
    folder = make_image_folder(tmp_path / "ds", {"a": 5, "b": 2}, size=8)
    run_pipeline(str(folder), tiny_config("model.variant=oom-large", "train.batch_size=8", *KEEP_ALL), tmp_path / "o")
    meta = json.loads((tmp_path / "o" / "dataset.json").read_text())
    assert meta["checkpoint"]["batch_size"] == 2
    assert "out of device memory at train.batch_size = 8; retrying with 4" in caplog.text
    assert "train.batch_size = 4; retrying with 2" in caplog.text


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_full_or_read_only_disk_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch, code):
    folder = make_image_folder(tmp_path / "ds", {"a": 5, "b": 2}, size=8)
    calls = {"n": 0}
    real_write = png_files.write_png

    def failing(path, image):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(code, __import__("os").strerror(code), str(path))
        real_write(path, image)

    monkeypatch.setattr(png_files, "write_png", failing)
    with pytest.raises(OutputError, match=rf"Cannot write .*{__import__('os').strerror(code)}"):
        run_pipeline(str(folder), tiny_config(*KEEP_ALL), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
