import pytest
import torch

import augment.precision
from augment.errors import ConfigError
from augment.precision import autocast_for, resolve_precision

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def cpu_with(*units: str):
    """A stand-in for the CPU feature checks: only the named ones answer yes."""
    return lambda check: check in units


@pytest.mark.parametrize("units, asked, expected", [
    (("_is_amx_tile_supported",), "auto", "bf16"),           # AMX: bf16 pays (3x fp32 measured)
    (("_is_avx512_bf16_supported",), "auto", "fp32"),        # bf16 dot products only: not measured, so fp32
    (("_is_avx512_bf16_supported",), "bf16", "bf16"),        # ... unless asked for
    ((), "auto", "fp32"),
    (("_is_amx_tile_supported",), "fp32", "fp32"),
])
def test_the_cpu_resolves_precision_by_its_bf16_units(monkeypatch, units, asked, expected):
    monkeypatch.setattr(augment.precision, "_cpu_has", cpu_with(*units))
    assert resolve_precision(CPU, asked) == expected


def test_bf16_asked_of_a_cpu_without_bf16_units_says_what_to_do(monkeypatch):
    monkeypatch.setattr(augment.precision, "_cpu_has", cpu_with())
    with pytest.raises(ConfigError, match="Use 'auto' or 'fp32'"):
        resolve_precision(CPU, "bf16")


def test_cuda_is_bf16_unless_fp32_is_asked_for():
    assert [resolve_precision(CUDA, p) for p in ("auto", "bf16", "fp32")] == ["bf16", "bf16", "fp32"]


def test_bf16_autocast_runs_the_convolutions_in_bf16_and_fp32_leaves_them_alone(monkeypatch):
    monkeypatch.setattr(augment.precision, "_cpu_has", cpu_with("_is_amx_tile_supported"))
    conv, x = torch.nn.Conv2d(1, 2, 3), torch.randn(1, 1, 5, 5)
    with autocast_for(CPU):
        assert conv(x).dtype == torch.bfloat16
    with autocast_for(CPU, "fp32"):
        assert conv(x).dtype == torch.float32
