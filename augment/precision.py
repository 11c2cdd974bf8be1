"""The arithmetic of a device's forward passes: bf16 autocast on CUDA, fp32 on the CPU."""

from __future__ import annotations

import contextlib

import torch

from augment.errors import ConfigError


def autocast_for(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA unless fp32 was asked for; the CPU runs fp32 (bf16 there needs CUDA)."""
    if device.type != "cuda":
        if precision == "bf16":
            raise ConfigError("train.precision is 'bf16' but training runs on the CPU, where it would be slower "
                              "than fp32. Use 'auto' or 'fp32', or train.device = 'cuda'.")
        return contextlib.nullcontext()
    return contextlib.nullcontext() if precision == "fp32" else torch.autocast("cuda", dtype=torch.bfloat16)
