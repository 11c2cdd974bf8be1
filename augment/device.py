"""Which device a run computes on, and getting the process ready to compute there."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from augment.cpu_memory import keep_freed_memory
from augment.errors import ConfigError

if TYPE_CHECKING:
    from augment.config import TrainConfig


def resolve_device(name: str) -> torch.device:
    """train.device as a torch device: 'auto' takes CUDA where there is one; no side effects."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is available here. Use 'auto' or 'cpu'.")
    return torch.device(name)


def prepare_device(tc: TrainConfig) -> torch.device:
    """The device train.device names, with the process set up for it: on the CPU with
    train.keep_cpu_memory, glibc's malloc keeps freed memory for the whole process (augment.cpu_memory),
    so training, generation and scoring steps do not fault their pages in again."""
    device = resolve_device(tc.device)
    if device.type == "cpu" and tc.keep_cpu_memory:
        keep_freed_memory()
    return device
