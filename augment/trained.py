"""The trained models of a run, as the training stage recorded them: which GAN serves each class, and
the auxiliary classifier where the variant has no class head. Loaded on demand, once each."""

from __future__ import annotations

from typing import Any

import torch

from augment.atomic import read_json
from augment.generate import LoadedGAN, load_gan
from augment.layout import RunLayout
from augment.score.aux_classifier import load_aux_classifier


class TrainedModels:
    """The GAN(s) and auxiliary classifier of a finished training stage, on `device`."""

    def __init__(self, layout: RunLayout, device: torch.device):
        self.root = layout.train_dir
        self.summary = read_json(layout.train_result)
        self.device = device
        self._loaded: dict[str, LoadedGAN] = {}

    def run_of(self, class_name: str) -> str:
        return self.summary["class_runs"][class_name]

    def gan(self, key: str) -> LoadedGAN:
        if key not in self._loaded:
            self._loaded[key] = load_gan(self.root / self.summary["runs"][key]["best_checkpoint"], self.device)
        return self._loaded[key]

    def gan_for(self, class_name: str) -> LoadedGAN:
        return self.gan(self.run_of(class_name))

    def aux_classifier(self) -> Any:
        path = self.summary["aux_classifier"]
        return load_aux_classifier(self.root / path, self.device) if path else None
