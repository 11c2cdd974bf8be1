"""A small CNN with one fixed training recipe: the external judge of synthetic images, the downstream
classifier of the benchmarks, and the classification-accuracy-score (CAS) model.

The recipe is fixed on purpose, so that figures from different runs compare: Adam (lr 1e-3),
batch 128, class-balanced batches, random shifts of up to 1/8 of the image side, `steps` steps, bf16
autocast where augment.precision finds it fast (AMX CPUs, CUDA; 2-3x the steps per second of fp32 on AMX).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from augment.data.batches import BatchSampler
from augment.device import loop_governor
from augment.diffaugment import translation
from augment.precision import autocast_for

FEATURE_DIM = 128


class SmallCNN(nn.Module):
    """Two conv blocks, average pooling to 2x2, a 128-d feature layer, a linear head.

    Pooling to 2x2 rather than 1x1 keeps where strokes are: on MNIST-LT (28 px, 1,000 steps) it
    lifted test balanced accuracy from 0.900 to 0.959, on digits-LT (8 px) from 0.795 to 0.853."""

    def __init__(self, channels: int, num_classes: int, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(8 * width, FEATURE_DIM), nn.ReLU(inplace=True))
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def to_input(images: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float in [0, 1] on the device (the input contract of every judge)."""
    return images.to(device).float().div_(255.0)


AUGMENTATIONS = ("shift", "standard", "none")
SCHEDULES = ("constant", "cosine")
LR = 1e-3


def rotation(x: torch.Tensor, g: torch.Generator, degrees: float = 10.0) -> torch.Tensor:
    """Rotate each image by up to +-degrees about its centre, filling with zeros."""
    angle = (torch.rand(x.shape[0], generator=g, device=x.device) * 2 - 1) * (degrees * math.pi / 180)
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)


def augment_batch(x: torch.Tensor, how: str, g: torch.Generator) -> torch.Tensor:
    """The recipe's augmentation: 'shift' (up to 1/8 of the side, the fixed recipe), 'standard' (the mild
    standard one of the imbalanced-learning literature: +-2 px shifts and +-10 degree rotations) or 'none'."""
    if how == "shift":
        return translation(x, g)
    if how == "standard":
        return rotation(translation(x, g, ratio=2 / max(x.shape[2:])), g)
    if how == "none":
        return x
    raise ValueError(f"unknown CNN augmentation {how!r}; use one of {AUGMENTATIONS}")


def train_cnn(images: torch.Tensor, labels: torch.Tensor, num_classes: int, *, steps: int = 1000,
              batch_size: int = 128, seed: int = 0, device: torch.device | str = "cpu", width: int = 32,
              balanced: bool = True, class_weighted: bool = False, sample_weight: np.ndarray | None = None,
              defer: float = 0.0, early_rows: int | None = None, augmentation: str = "shift",
              precision: str = "auto", mixup: float = 0.0, schedule: str = "constant") -> SmallCNN:
    """Train the fixed recipe on uint8 images; batches are drawn on the device from explicit generators.
    balanced: class-balanced batches (the external judge); class_weighted: uniform batches with a
    cross-entropy weighted by inverse class frequency (the downstream 'class-weighted' arm);
    sample_weight: batches drawn with these per-image probabilities, as a WeightedRandomSampler would.
    defer: the first `defer` of the steps draw uniformly from the first `early_rows` images (all by default)
    with a plain loss, and the re-balancing above enters after (deferred re-weighting, Cao et al. 2019).
    precision: bf16 autocast where augment.precision says it is fast (AMX CPUs, CUDA). mixup: alpha of
    mixup (Zhang et al. 2018) in every batch, 0 for none: each batch blended with itself reversed.
    schedule: the learning rate over the steps, 'constant' (the fixed recipe) or 'cosine' (decayed to 0)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown CNN learning-rate schedule {schedule!r}; use one of {SCHEDULES}")
    device = torch.device(device)
    torch.manual_seed(seed)
    model = SmallCNN(images.shape[1], num_classes, width).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    gen = torch.Generator(device=device).manual_seed(seed + 1)
    x_all, y_all = images.to(device), labels.to(device)
    late, weight = _rebalanced_draw(y_all, num_classes, balanced, class_weighted, sample_weight, gen)
    n_early = len(y_all) if early_rows is None else early_rows
    early = (lambda n: torch.randint(n_early, (n,), generator=gen, device=device))  # noqa: E731
    switch = int(round(defer * steps))
    batch = min(batch_size, max(2, len(y_all)))
    amp = autocast_for(device, precision)
    governor = loop_governor(device)  # train.threads = 'adaptive' in a run: follow the load, as GAN training does
    model.train()
    for step in range(steps):
        if governor is not None:
            governor.tick()
        if schedule == "cosine":
            opt.param_groups[0]["lr"] = LR * 0.5 * (1 + math.cos(math.pi * step / steps))
        deferred = step < switch
        idx = (early if deferred else late)(batch)
        x = augment_batch(x_all[idx].float().div_(255.0), augmentation, gen)
        w = None if deferred else weight
        if mixup > 0:
            lam = float(np.random.default_rng([seed, step]).beta(mixup, mixup))
            x = lam * x + (1 - lam) * x.flip(0)
        with amp:
            logits = model(x).float()
        loss = F.cross_entropy(logits, y_all[idx], weight=w)
        if mixup > 0:
            loss = lam * loss + (1 - lam) * F.cross_entropy(logits, y_all[idx].flip(0), weight=w)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


def retrain_head(model: SmallCNN, images: torch.Tensor, labels: torch.Tensor, *, steps: int, seed: int = 0,
                 device: torch.device | str = "cpu", batch_size: int = 128, augmentation: str = "shift",
                 precision: str = "auto") -> SmallCNN:
    """Classifier re-training (cRT, Kang et al. 2020): keep the features, fit a fresh linear head on
    class-balanced batches of `images` (the real ones), so what the body learned from synthetic images stays
    while the decision is made on real ones."""
    device = torch.device(device)
    torch.manual_seed(seed + 2)
    model.head.reset_parameters()
    opt = torch.optim.Adam(model.head.parameters(), lr=1e-3)
    gen = torch.Generator(device=device).manual_seed(seed + 3)
    x_all, y_all = images.to(device), labels.to(device)
    draw = BatchSampler(y_all, model.head.out_features, True, gen)
    amp = autocast_for(device, precision)
    model.eval()  # no dropout or batch norm in the body: eval only documents that it is frozen
    for _ in range(steps):
        idx = draw(min(batch_size, max(2, len(y_all))))
        x = augment_batch(x_all[idx].float().div_(255.0), augmentation, gen)
        with torch.no_grad(), amp:
            feats = model.features(x)
        loss = F.cross_entropy(model.head(feats.float()), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model


def _rebalanced_draw(y: torch.Tensor, num_classes: int, balanced: bool, class_weighted: bool,
                     sample_weight: np.ndarray | None, gen: torch.Generator):
    """(batch draw, loss class weights) of the recipe's re-balancing (see train_cnn)."""
    draw = BatchSampler(y, num_classes, balanced, gen)
    if sample_weight is not None:
        probs = torch.as_tensor(np.asarray(sample_weight, dtype=np.float64), device=y.device)
        draw = (lambda n: torch.multinomial(probs, n, replacement=True, generator=gen))  # noqa: E731
    weight = None
    if class_weighted:
        counts = torch.bincount(y, minlength=num_classes).float().clamp_min(1)
        weight = len(y) / (num_classes * counts)
    return draw, weight


@torch.inference_mode()
def predict(model: nn.Module, images: torch.Tensor, device: torch.device | str = "cpu",
            batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (N, K), features (N, F)) for uint8 images; models without `features` give logits.
    In fp32 (training may run in bf16): the features feed Frechet distances, and prediction is cheap.
    A SmallCNN reads channels-last batches of 256 (its weights turn channels-last too): on 2 CPU cores,
    8,192 images at 28 px took 2.2 s against 4.4 s in NCHW batches of 1,024."""
    probs, feats = [], []
    small = isinstance(model, SmallCNN)
    if small:
        model = model.to(memory_format=torch.channels_last)
    for b in range(0, len(images), batch_size):
        x = to_input(images[b:b + batch_size], device)
        if small:
            f = model.features(x.contiguous(memory_format=torch.channels_last))
            logits = model.head(f)
        else:  # a user's TorchScript model: logits from forward, features where it exports them
            logits = model(x)
            f = model.features(x) if hasattr(model, "features") else logits
        probs.append(torch.softmax(logits.float(), dim=1).cpu())
        feats.append(f.float().cpu())
    if not probs:
        return np.zeros((0, 0)), np.zeros((0, 0))
    return torch.cat(probs).numpy().astype(np.float64), torch.cat(feats).numpy().astype(np.float64)
