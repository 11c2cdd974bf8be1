"""Conditional control: trained briefly on horizontal vs vertical bars, each conditional variant
generates images that a classifier fitted on the real images reads as the asked-for class."""

import pytest
import torch
from makers import bars, tiny_config

from augment.data import LabeledImages
from augment.generate import generate, load_gan
from augment.score.probe import fit_pixel_logreg, pixels
from augment.train import train


@pytest.fixture(scope="module")
def bars16():
    x = torch.stack([torch.from_numpy(bars(i % 2, 16, seed=i, thickness=3)) for i in range(200)])[:, None]
    y = torch.tensor([i % 2 for i in range(200)])
    return LabeledImages(x, y, ["horizontal", "vertical"], [f"b{i}" for i in range(200)], "bars16")


@pytest.mark.slow
@pytest.mark.parametrize("sets", [
    ["model.variant=acgan"],
    ["model.variant=acgan", "model.conditioning=concat"],
    ["model.variant=cgan", "model.d_conditioning=projection"],
    ["model.variant=cgan", "model.d_conditioning=channels"],
    ["model.variant=gan-cls", "model.loss=lsgan"],
], ids=lambda s: "+".join(v.split("=")[1] for v in s))
def test_generated_images_are_of_the_asked_for_class(sets, bars16, tmp_path):
    cfg = tiny_config(*sets, "image.size=16", "model.width=16", "model.latent_dim=16", "train.steps=600",
                      "train.lr=0.0005", "train.ema_decay=0.99", "train.batch_size=32", "train.checkpoint_every=600",
                      "train.log_every=100")
    result = train(bars16, cfg, tmp_path / "run")
    judge = fit_pixel_logreg(pixels(bars16.images), bars16.labels.numpy())
    syn = generate(load_gan(result.last_checkpoint), {0: 100, 1: 100}, seed=0)
    pred = judge.predict(pixels(syn.images))
    y = syn.labels.numpy()
    per_class = [float((pred[y == c] == c).mean()) for c in (0, 1)]
    assert min(per_class) >= 0.9, per_class
