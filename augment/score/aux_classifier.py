"""An auxiliary classifier for GAN variants without a class head (cgan, gan-cls, dcgan): the
discriminator's backbone with a class head, trained on the real images only, so that every synthetic
image still gets an `aux_prob` of its intended class."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch.nn import functional as F

from augment import checkpoint as ckpt
from augment.config import Config
from augment.data.batches import BatchSampler
from augment.data.labeled import LabeledImages
from augment.device import resolve_device
from augment.models.backbone import Discriminator

FORMAT = 1
DESCRIPTION = "auxiliary classifier (discriminator backbone) trained alongside on the real images only"


def train_aux_classifier(data: LabeledImages, cfg: Config, path: Path) -> float:
    """Train for `train.aux_steps` class-balanced batches, written atomically to `path`; returns the
    seconds the training took (read back from the checkpoint when it was already there), so that the
    time counts against the stage's `train.max_seconds`."""
    path = Path(path)
    if path.exists():
        return float(ckpt.load_checkpoint(path).get("seconds", 0.0))
    t0 = time.perf_counter()
    device = resolve_device(cfg.train.device)
    torch.manual_seed(cfg.seed + 11)
    model = Discriminator(data.channels, data.size, cfg.model.width, aux_classes=data.num_classes).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, betas=(cfg.train.beta1, cfg.train.beta2))
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 13)
    images, labels = data.images.to(device), data.labels.to(device)
    sampler = BatchSampler(labels, data.num_classes, True, gen)
    for _ in range(cfg.train.aux_steps):
        idx = sampler(cfg.train.batch_size)
        x = images[idx].float().div_(127.5).sub_(1.0)
        loss = F.cross_entropy(model(x)[1], labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt.save_checkpoint({"format": FORMAT, "channels": data.channels, "size": data.size, "width": cfg.model.width,
                          "num_classes": data.num_classes, "state": model.state_dict(),
                          "steps": cfg.train.aux_steps, "seconds": time.perf_counter() - t0}, path)
    return time.perf_counter() - t0


def load_aux_classifier(path: Path, device: torch.device | str = "cpu") -> Discriminator:
    state = ckpt.load_checkpoint(Path(path), map_location=device)
    model = Discriminator(state["channels"], state["size"], state["width"], aux_classes=state["num_classes"])
    model.load_state_dict(state["state"])
    return model.to(device).eval()
