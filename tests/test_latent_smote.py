import json

import numpy as np
import pandas as pd
import torch
from makers import KEEP_ALL, bars, make_image_folder, tiny_config
from PIL import Image

from augment.dry_run import dry_run
from augment.generate import generate, load_gan
from augment.latent_smote import (
    AutoencoderConfig,
    encode_all,
    generate_latent_smote,
    train_autoencoder,
)
from augment.models.latent_smote import LatentSmoteGenerator
from augment.pipeline import run_pipeline


def bar_images(n_per_class: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    imgs = [bars(c, size=12, seed=i) for c, n in enumerate(n_per_class) for i in range(n)]
    labels = [c for c, n in enumerate(n_per_class) for _ in range(n)]
    return torch.from_numpy(np.stack(imgs))[:, None], torch.tensor(labels)


def test_the_autoencoder_learns_to_reconstruct_and_generates_the_classes_asked_for():
    images, labels = bar_images((24, 4))
    cfg = AutoencoderConfig(latent_dim=4, width=8, steps=150, batch_size=16, lr=3e-3)
    untrained = train_autoencoder(images, labels, AutoencoderConfig(latent_dim=4, width=8, steps=1), seed=0)
    model = train_autoencoder(images, labels, cfg, seed=0)
    x = images.float() / 255

    def error(m):
        with torch.no_grad():
            return float(((m.decode(m.encode(x)) - x) ** 2).mean())

    assert error(model) < 0.6 * error(untrained)
    syn, syn_y = generate_latent_smote(model, images, labels, {0: 0, 1: 20}, seed=1)
    assert syn.dtype == torch.uint8 and syn.shape == (20, 1, 12, 12) and (syn_y == 1).all()
    again, _ = generate_latent_smote(model, images, labels, {1: 20}, seed=1)
    assert torch.equal(syn, again)  # the same seed gives the same images
    # decoded tail images look like the tail's vertical bars: each column's brightness varies more than each row's
    img = syn.float()[:, 0]
    assert (img.mean(1).std(1) > img.mean(2).std(1)).float().mean() > 0.8
    assert encode_all(model, images).shape == (28, 4)


def test_the_generator_draws_only_between_codes_of_the_asked_for_class_and_survives_a_checkpoint():
    G = LatentSmoteGenerator(1, 8, 2, 4, code_dim=3)
    codes = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [5.0, 5.0, 5.0]])
    G.set_codes(codes, torch.tensor([0, 0, 1]))
    G.eval()
    z = torch.randn(16, 4)
    with torch.no_grad():
        one = G(z, torch.ones(16, dtype=torch.long))
        assert torch.allclose(one, one[:1].expand_as(one))  # class 1 has one code: every latent draws it
        reloaded = LatentSmoteGenerator(1, 8, 2, 4, code_dim=3)
        reloaded.load_state_dict(G.state_dict())  # buffers sized by the data come back at their size
        y = torch.zeros(16, dtype=torch.long)
        assert torch.equal(reloaded.eval()(z, y), G(z, y))


def test_latent_smote_runs_end_to_end_as_a_variant(tmp_path):
    folder = make_image_folder(tmp_path / "ds", {"a": 6, "b": 3}, size=8)
    out = tmp_path / "out"
    summary = run_pipeline(str(folder), tiny_config("model.variant=latent-smote", *KEEP_ALL, "train.steps=20"), out)
    assert summary["kept"] == {"a": 0, "b": 3}
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["scorers"]["aux_prob"].startswith("auxiliary classifier")
    m = pd.read_parquet(out / "manifest.parquet")
    kept = m[m["is_synthetic"] & m["kept"]].sort_values("latent_index")
    assert kept["generator"].str.startswith("latent-smote@").all()
    # the output's images are the checkpoint's: latent i of class b regenerates image i
    gan = load_gan(out / "gan" / "all" / "checkpoints" / "best.pt")
    again = generate(gan, {1: 3}, seed=0)
    on_disk = np.stack([np.asarray(Image.open(out / p)) for p in kept["path"]])
    assert np.array_equal(again.images[:, 0].numpy(), on_disk)


def test_a_dry_run_times_the_autoencoder(tmp_path):
    folder = make_image_folder(tmp_path / "ds", {"a": 6, "b": 3}, size=8)
    plan = dry_run(str(folder), tiny_config("model.variant=latent-smote"), tmp_path / "out")
    assert plan.seconds_per_step > 0 and not (tmp_path / "out").exists()
