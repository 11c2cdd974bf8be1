"""An encoder that inverts a trained conditional generator (E(G(z, y)) ~ z), and the test that comes before
any transfer of head-class variation to the tail through it: do the codes of real images still carry their
class? If a classifier reads the class from E(x), a code is not class-free style, and G(E(x_head), y_tail)
carries head content as well as head variation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from augment.generate import LoadedGAN, shape_of
from augment.grids import to_uint8
from augment.score.cnn import SmallCNN, to_input


@dataclass
class Inversion:
    """The encoder (uint8 images in, latent codes out) and how well it inverts the generator on fresh samples:
    `fit_error`, the mean squared error of E(G(z, y)) against z as a share of var(z) = 1 (0: exact, 1: no
    better than 0; coordinates G ignores cannot be recovered), and `pixel_error`, that of G(E(x), y) against
    x = G(z, y) as a share of the pixel variance between samples (what a re-drawn image keeps)."""

    encoder: nn.Module
    latent_dim: int
    fit_error: float
    pixel_error: float


def _fakes(gan: LoadedGAN, n: int, num_classes: int, gen: torch.Generator, device: torch.device
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    z = torch.randn(n, gan.latent_dim, generator=gen, device=device)
    y = torch.randint(num_classes, (n,), generator=gen, device=device)
    with torch.no_grad():
        x = to_uint8(gan.generator(z, y))  # as the pipeline writes them: uint8
    return z, y, x


def _in_tanh_range(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return to_input(x, device).mul(2).sub(1)  # the generator's output range, [-1, 1]


def _share_of_spread(drawn: torch.Tensor, target: torch.Tensor) -> float:
    """Mean squared error of drawn against target as a share of the target's pixel variance between images."""
    return float(nn.functional.mse_loss(drawn, target)) / max(float(target.var(dim=0).mean()), 1e-12)


def train_encoder(gan: LoadedGAN, num_classes: int, *, steps: int = 1000, batch: int = 128, width: int = 32,
                  seed: int = 0, real: tuple[torch.Tensor, torch.Tensor] | None = None, pixel_weight: float = 1.0,
                  device: torch.device | str = "cpu") -> Inversion:
    """Fit E on the generator's own images (a fresh batch each step, labels uniform) to regress their latent
    vectors, plus `pixel_weight` x the pixel error of re-drawing them, G(E(x), y) against x. With `real`
    (uint8 images, labels), real images are re-drawn too (in-domain inversion: codes that reproduce the
    data, not only G's samples). The generator stays fixed; gradients pass through it to E."""
    device = torch.device(device)
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed + 1)
    encoder = SmallCNN(shape_of(gan)[0], gan.latent_dim, width).to(device)
    frozen = [p for p in gan.generator.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    opt = torch.optim.Adam(encoder.parameters(), lr=1e-3)
    real_draw = torch.Generator().manual_seed(seed + 2)
    for _ in range(steps):
        z, y, x = _fakes(gan, batch, num_classes, gen, device)
        code = encoder(to_input(x, device))
        loss = nn.functional.mse_loss(code, z)
        if pixel_weight:
            loss = loss + pixel_weight * nn.functional.mse_loss(gan.generator(code, y), _in_tanh_range(x, device))
            if real is not None:
                pick = torch.randint(len(real[1]), (batch,), generator=real_draw)
                xr, yr = real[0][pick], real[1][pick].to(device)
                drawn = gan.generator(encoder(to_input(xr, device)), yr)
                loss = loss + pixel_weight * nn.functional.mse_loss(drawn, _in_tanh_range(xr, device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    for p in frozen:
        p.requires_grad_(True)
    encoder.eval()
    z, y, x = _fakes(gan, 1024, num_classes, gen, device)
    with torch.no_grad():
        code = encoder(to_input(x, device))
        error = float(nn.functional.mse_loss(code, z))
        pixel = _share_of_spread(gan.generator(code, y), _in_tanh_range(x, device))
    return Inversion(encoder, gan.latent_dim, error, pixel)


@torch.no_grad()
def redraw_error(gan: LoadedGAN, inv: Inversion, images: torch.Tensor, labels: torch.Tensor,
                 device: torch.device | str = "cpu") -> float:
    """G(E(x), y) against x for images of their own class, as a share of the pixel variance between them
    (0: reproduced, 1: no closer than the mean image)."""
    device = torch.device(device)
    z = torch.from_numpy(codes(inv, images, device)).float().to(device)
    return _share_of_spread(gan.generator(z, labels.to(device)), _in_tanh_range(images, device))


@torch.no_grad()
def codes(inv: Inversion, images: torch.Tensor, device: torch.device | str = "cpu",
          batch_size: int = 1024) -> np.ndarray:
    """E(x) for uint8 images (N, C, H, W), as a float64 array (N, latent_dim)."""
    out = [inv.encoder(to_input(images[b:b + batch_size], device)).float().cpu()
           for b in range(0, len(images), batch_size)]
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros((0, inv.latent_dim))


def class_leakage(train_codes: np.ndarray, train_labels: np.ndarray, test_codes: np.ndarray,
                  test_labels: np.ndarray) -> float:
    """Balanced accuracy of a logistic regression that reads the class from the codes (chance: 1 / classes).
    Near chance, a code is style only; near a classifier on the images, it is content too."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_codes)
    clf = LogisticRegression(max_iter=2000, class_weight="balanced").fit(scaler.transform(train_codes), train_labels)
    return float(balanced_accuracy_score(test_labels, clf.predict(scaler.transform(test_codes))))


@torch.no_grad()
def restyle(gan: LoadedGAN, inv: Inversion, images: torch.Tensor, target: int | torch.Tensor,
            device: torch.device | str = "cpu") -> torch.Tensor:
    """G(E(x), target) for uint8 images x of any class: the target class (one for all, or one per image)
    drawn with each image's code (the transfer the issue names); uint8 (N, C, H, W)."""
    z = torch.from_numpy(codes(inv, images, device)).float().to(device)
    y = torch.as_tensor(target, dtype=torch.long, device=device).expand(len(z))
    return to_uint8(gan.generator(z, y)).cpu()
