"""An encoder that inverts a trained conditional generator (E(G(z, y)) ~ z), and the test that comes before
any transfer of head-class variation to the tail through it: do the codes of real images still carry their
class? If a classifier reads the class from E(x), a code is not class-free style, and G(E(x_head), y_tail)
carries head content as well as head variation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from augment.generate import LoadedGAN
from augment.grids import to_uint8
from augment.score.cnn import SmallCNN, to_input


@dataclass
class Inversion:
    """The encoder (uint8 images in, latent codes out) and how well it inverts the generator: the mean squared
    error of E(G(z, y)) against z on fresh samples, as a share of var(z) = 1 (0: exact, 1: no better than 0)."""

    encoder: nn.Module
    latent_dim: int
    fit_error: float


def _fakes(gan: LoadedGAN, n: int, num_classes: int, gen: torch.Generator, device: torch.device
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    z = torch.randn(n, gan.latent_dim, generator=gen, device=device)
    y = torch.randint(num_classes, (n,), generator=gen, device=device)
    with torch.no_grad():
        x = to_uint8(gan.generator(z, y))  # as the pipeline writes them: uint8
    return z, y, x


def train_encoder(gan: LoadedGAN, num_classes: int, *, steps: int = 1000, batch: int = 128, width: int = 32,
                  seed: int = 0, device: torch.device | str = "cpu") -> Inversion:
    """Fit E on the generator's own images (a fresh batch each step, labels uniform) to regress their
    latent vectors; the generator stays fixed."""
    device = torch.device(device)
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed + 1)
    channels = gan.generator(torch.zeros(1, gan.latent_dim, device=device),
                             torch.zeros(1, dtype=torch.long, device=device)).shape[1]
    encoder = SmallCNN(channels, gan.latent_dim, width).to(device)
    opt = torch.optim.Adam(encoder.parameters(), lr=1e-3)
    for _ in range(steps):
        z, _, x = _fakes(gan, batch, num_classes, gen, device)
        loss = nn.functional.mse_loss(encoder(to_input(x, device)), z)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    encoder.eval()
    z, _, x = _fakes(gan, 1024, num_classes, gen, device)
    with torch.no_grad():
        error = float(nn.functional.mse_loss(encoder(to_input(x, device)), z))
    return Inversion(encoder, gan.latent_dim, error)


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
def restyle(gan: LoadedGAN, inv: Inversion, images: torch.Tensor, target: int,
            device: torch.device | str = "cpu") -> torch.Tensor:
    """G(E(x), target) for uint8 images x of any class: the target class drawn with each image's code (the
    transfer the issue names); uint8 (N, C, H, W)."""
    z = torch.from_numpy(codes(inv, images, device)).float().to(device)
    y = torch.full((len(z),), target, dtype=torch.long, device=device)
    return to_uint8(gan.generator(z, y)).cpu()
