"""The arithmetic of a device's forward passes: bf16 autocast on CUDA and on CPUs with bf16 units, else fp32."""

from __future__ import annotations

import contextlib

import torch

from augment.errors import ConfigError


def _cpu_has(check: str) -> bool:
    return bool(getattr(torch.cpu, check, lambda: False)())


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AMX or AVX-512 BF16), so bf16 can be asked for here."""
    return _cpu_has("_is_amx_tile_supported") or _cpu_has("_is_avx512_bf16_supported")


def cpu_prefers_bf16() -> bool:
    """Whether 'auto' takes bf16 on this CPU: with AMX tiles (training measured 2.5-2.7x fp32 there)."""
    return _cpu_has("_is_amx_tile_supported")


def resolve_precision(device: torch.device, precision: str = "auto") -> str:
    """'bf16' or 'fp32' for train.precision on this device: auto takes bf16 where the hardware has it."""
    if precision == "fp32":
        return "fp32"
    if device.type == "cuda" or (cpu_prefers_bf16() if precision == "auto" else cpu_has_bf16()):
        return "bf16"
    if precision == "bf16":
        raise ConfigError("train.precision is 'bf16' but this CPU has no bf16 arithmetic (AMX or AVX-512 BF16), "
                          "where it would be slower than fp32. Use 'auto' or 'fp32', or train.device = 'cuda'.")
    return "fp32"


def autocast_for(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """bf16 autocast where resolve_precision says bf16; weights, optimizer state and losses stay fp32."""
    if resolve_precision(device, precision) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
