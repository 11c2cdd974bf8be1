"""The mixing variants' 'training': store the training images in the generator and publish it like a
trained GAN (augment.one_shot). Seconds, not minutes: nothing is fitted."""

from __future__ import annotations

import time
from pathlib import Path

from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.device import prepare_device
from augment.one_shot import publish_generator
from augment.train_state import TrainResult, build_networks, data_shape


def train_mixing(data: LabeledImages, cfg: Config, run_dir: str | Path, *, on_progress=None,
                 quality=None) -> TrainResult:
    """The generator of model.variant ('remix' or 'cutmix') over `data`'s images, as step 1 of 1."""
    t0 = time.perf_counter()
    device = prepare_device(cfg.train)
    G, _ = build_networks(cfg, data_shape(data))
    G = G.to(device)
    G.set_images(data.images, data.labels)
    if on_progress is not None:
        on_progress(1, 1, None)
    return publish_generator(G.eval(), data, cfg, run_dir, step=1, seconds=time.perf_counter() - t0, device=device,
                             precision="fp32", quality=quality)
