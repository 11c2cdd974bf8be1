"""Inverting a generator and asking whether its codes carry the class (augment.inversion), on a toy generator
whose images are a known function of the latent: the class only shifts the brightness."""

import torch
from torch import nn

from augment.generate import LoadedGAN
from augment.inversion import class_leakage, codes, redraw_error, restyle, train_encoder

LATENT, SIZE = 4, 8


class ToyGenerator(nn.Module):
    """Stripes whose phase and frequency mix follow z; class 1 is brighter than class 0."""

    def __init__(self):
        super().__init__()
        self.register_buffer("w", torch.randn(LATENT, SIZE * SIZE, generator=torch.Generator().manual_seed(0)))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        image = torch.tanh(z @ self.w / 2) * 0.6 + (y.float()[:, None] - 0.5) * 0.6
        return image.view(-1, 1, SIZE, SIZE)


def toy_gan() -> LoadedGAN:
    return LoadedGAN(ToyGenerator().eval(), nn.Identity(), "toy", LATENT, ["dark", "bright"], 0)


def real_images(gan: LoadedGAN, class_dependent_style: bool, n: int = 400, seed: int = 5):
    """'Real' images of both classes drawn by the toy generator, their latents shifted by class or not."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    z = torch.randn(n, LATENT, generator=g) + (2.0 * y[:, None] if class_dependent_style else 0.0)
    with torch.no_grad():
        x = gan.generator(z, y).add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
    return x, y.numpy()


def test_the_encoder_inverts_the_generator_and_the_class_is_read_only_where_the_style_carries_it():
    gan = toy_gan()
    inv = train_encoder(gan, num_classes=2, steps=400, batch=64, width=8, seed=0)
    assert inv.fit_error < 0.2  # far below var(z) = 1: E(G(z, y)) ~ z
    assert inv.pixel_error < 0.2  # and G(E(x), y) ~ x
    leaks = {}
    for dependent in (False, True):
        x, y = real_images(gan, dependent)
        c = codes(inv, x)
        assert c.shape == (len(x), LATENT)
        leaks[dependent] = class_leakage(c[:200], y[:200], c[200:], y[200:])
    assert leaks[False] < 0.65, leaks  # near chance (0.5): the class lives in the label, not the code
    assert leaks[True] > 0.9, leaks  # the style itself tells the classes apart


def test_restyle_draws_the_target_class_with_each_images_code():
    gan = toy_gan()
    inv = train_encoder(gan, num_classes=2, steps=400, batch=64, width=8, seed=0)
    dark, _ = real_images(gan, False, n=40)
    dark = dark[::2]  # class 0 only
    bright = restyle(gan, inv, dark, target=1)
    assert bright.shape == dark.shape and bright.dtype == torch.uint8
    gap = bright.float().mean() - dark.float().mean()
    assert 60 < gap < 100  # the class's brightness shift (0.6 of [-1, 1] = 76 grey levels), the rest kept
    # the same code under the image's own class gives the image back
    again = restyle(gan, inv, dark, target=0)
    assert (again.float() - dark.float()).abs().mean() < 12


def test_in_domain_inversion_reproduces_real_images_the_generator_was_not_fitted_on():
    """'Real' images drawn from latents shifted away from N(0, I): an encoder trained on G's samples alone
    extrapolates; one that also re-draws the real images (in-domain) reproduces them more closely."""
    gan = toy_gan()
    x, y = real_images(gan, class_dependent_style=True, n=200)
    labels = torch.from_numpy(y)
    errors = {}
    for name, real in (("samples only", None), ("in-domain", (x, labels))):
        inv = train_encoder(gan, num_classes=2, steps=300, batch=64, width=8, seed=0, real=real)
        errors[name] = redraw_error(gan, inv, x, labels)
    assert errors["in-domain"] < errors["samples only"], errors
    assert errors["in-domain"] < 0.3, errors
