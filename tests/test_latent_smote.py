import numpy as np
import torch
from makers import bars

from augment.latent_smote import (
    AutoencoderConfig,
    encode_all,
    generate_latent_smote,
    smote_codes,
    train_autoencoder,
)


def bar_images(n_per_class: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    imgs = [bars(c, size=12, seed=i) for c, n in enumerate(n_per_class) for i in range(n)]
    labels = [c for c, n in enumerate(n_per_class) for _ in range(n)]
    return torch.from_numpy(np.stack(imgs))[:, None], torch.tensor(labels)


def test_smote_codes_lie_between_a_code_and_one_of_its_neighbours():
    codes = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 10.0]])
    new = smote_codes(codes, 200, k=1, rng=np.random.default_rng(0))
    # k = 1: the first two are each other's nearest neighbour, the third's nearest is the second
    on_first_segment = (np.abs(new[:, 1]) < 1e-12) & (new[:, 0] >= 0) & (new[:, 0] <= 1)
    on_second = np.isclose(new[:, 1], (new[:, 0] - 1) * 10 / 9) & (new[:, 0] >= 1) & (new[:, 0] <= 10)
    assert (on_first_segment | on_second).all()
    assert on_second.any() and on_first_segment.any()
    assert (smote_codes(codes[:1], 3, k=5, rng=np.random.default_rng(0)) == codes[0]).all()  # one code: repeats


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
    syn, syn_y = generate_latent_smote(model, images, labels, {0: 0, 1: 20}, k=3, seed=1)
    assert syn.dtype == torch.uint8 and syn.shape == (20, 1, 12, 12) and (syn_y == 1).all()
    again, _ = generate_latent_smote(model, images, labels, {1: 20}, k=3, seed=1)
    assert torch.equal(syn, again)  # the same seed gives the same images
    # decoded tail images look like the tail's vertical bars: each column's brightness varies more than each row's
    img = syn.float()[:, 0]
    assert (img.mean(1).std(1) > img.mean(2).std(1)).float().mean() > 0.8
    assert encode_all(model, images).shape == (28, 4)
