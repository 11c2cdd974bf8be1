import pytest
import torch
from makers import tiny_config

import augment.precision
from augment.data import LabeledImages
from augment.generate import Synthetic, generate, latents, load_gan
from augment.score.gan_scores import gan_scores
from augment.train import train


def test_latents_do_not_depend_on_how_they_are_batched():
    whole = latents(seed=3, cls=1, start=0, count=2500, dim=4)
    assert torch.equal(whole[1000:1100], latents(3, 1, 1000, 100, 4))
    assert torch.equal(whole[2040:2500], latents(3, 1, 2040, 460, 4))
    assert not torch.equal(whole[:10], latents(3, 2, 0, 10, 4))  # another class, other latents
    assert not torch.equal(whole[:10], latents(4, 1, 0, 10, 4))  # another seed, other latents


def _checkpoint(tmp_path):
    x = torch.randint(0, 256, (8, 1, 8, 8), dtype=torch.uint8)
    data = LabeledImages(x, torch.tensor([0] * 4 + [1] * 4), ["a", "b"], [str(i) for i in range(8)])
    return train(data, tiny_config(), tmp_path / "run").best_checkpoint


def test_generate_counts_and_reproducibility(tmp_path):
    gan = load_gan(_checkpoint(tmp_path))
    syn = generate(gan, {0: 3, 1: 5}, seed=7)
    assert syn.images.shape == (8, 1, 8, 8) and syn.images.dtype == torch.uint8
    assert syn.labels.tolist() == [0] * 3 + [1] * 5
    assert syn.latent_index.tolist() == [0, 1, 2, 0, 1, 2, 3, 4]
    again = generate(gan, {0: 3, 1: 5}, seed=7, batch_size=2)
    assert torch.equal(syn.images, again.images)
    later = generate(gan, {1: 2}, seed=7, start={1: 3}, round_index=1)
    assert torch.equal(later.images, syn.images[6:8]) and later.rounds.tolist() == [1, 1]


class OutputDtypes(torch.nn.Module):
    """Wraps a generator and notes the dtype each batch comes out in."""

    def __init__(self, generator):
        super().__init__()
        self.generator, self.seen = generator, []

    def forward(self, z, y):
        out = self.generator(z, y)
        self.seen.append(out.dtype)
        return out


def test_generation_follows_train_precision(tmp_path, monkeypatch):
    gan = load_gan(_checkpoint(tmp_path))
    gan.generator = spy = OutputDtypes(gan.generator)
    monkeypatch.setattr(augment.precision, "_cpu_has", lambda check: check == "_is_amx_tile_supported")
    fp32 = generate(gan, {0: 4, 1: 4}, seed=2, precision="fp32")
    assert set(spy.seen) == {torch.float32}
    spy.seen.clear()
    bf16 = generate(gan, {0: 4, 1: 4}, seed=2)  # auto, on a CPU with AMX
    assert set(spy.seen) == {torch.bfloat16}
    assert bf16.images.dtype == torch.uint8 and (bf16.images.int() - fp32.images.int()).abs().max() <= 8


def test_synthetic_save_load(tmp_path):
    gan = load_gan(_checkpoint(tmp_path))
    syn = generate(gan, {0: 2, 1: 2}, seed=1)
    syn.save(tmp_path / "s.npz")
    back = Synthetic.load(tmp_path / "s.npz")
    assert torch.equal(back.images, syn.images) and back.seed == 1


def test_gan_scores_are_probabilities(tmp_path):
    gan = load_gan(_checkpoint(tmp_path))
    syn = generate(gan, {0: 4, 1: 4}, seed=0)
    scores = gan_scores(gan, syn.images, syn.labels)
    for k in ("aux_prob", "realism"):
        assert scores[k].shape == (8,) and ((scores[k] >= 0) & (scores[k] <= 1)).all()


@pytest.mark.parametrize("sets", [(), ("model.acgan_projection=true",), ("model.arch=classic",)])
def test_acgan_reads_realism_and_class_from_one_discriminator_pass_as_from_two(sets):
    """gan_scores reads both from one pass of ACGAN's D: the same numbers as critic and class_probs apart."""
    from augment.models import VARIANTS
    from augment.models.registry import DataShape

    cfg = tiny_config(*sets)
    acgan = VARIANTS["acgan"]
    size = 32 if "model.arch=classic" in sets else 16
    _, d = acgan.build(cfg.model, DataShape(1, size, 3))
    d.eval()
    x, y = torch.rand(6, 1, size, size) * 2 - 1, torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.inference_mode():
        logits, probs = acgan.critic_with_probs(d, x, y)
        assert torch.allclose(logits, acgan.critic(d, x, y), atol=1e-6)
        assert torch.allclose(probs, acgan.class_probs(d, x), atol=1e-6)
    assert acgan.critic_and_probs is not None
