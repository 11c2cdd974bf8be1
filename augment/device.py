"""Which device a run computes on, and getting the process ready to compute there."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from augment.cpu_memory import keep_freed_memory
from augment.errors import ConfigError
from augment.thread_governor import ThreadGovernor

if TYPE_CHECKING:
    from augment.config import TrainConfig

ALL_CORES = torch.get_num_threads()  # torch's own choice (one per core, or OMP_NUM_THREADS), before any setting
_POLICY: dict[str, int | str | None] = {"threads": None}  # train.threads of the last prepare_device: process state,
# as torch's thread count is, so that the long loops of the stages after training (judge, probe, CAS) follow it


def thread_count(setting: int | str) -> int:
    """train.threads as a thread count: 0 = all cores; 'auto' = one fewer (at least one), so that one other
    busy process on the machine costs a fair share instead of stalling every parallel region. 'adaptive'
    starts there where the load cannot be read; prepare_device starts it at what the other processes leave,
    and augment.thread_governor moves it with their load in every long loop on the CPU."""
    if setting in ("auto", "adaptive"):
        return max(1, ALL_CORES - 1)
    return int(setting) or ALL_CORES


def resolve_device(name: str) -> torch.device:
    """train.device as a torch device: 'auto' takes CUDA where there is one; no side effects."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is available here. Use 'auto' or 'cpu'.")
    return torch.device(name)


def prepare_device(tc: TrainConfig) -> torch.device:
    """The device train.device names, with the process set up for it: torch's CPU threads per
    train.threads; on the CPU with train.keep_cpu_memory, glibc's malloc keeps freed memory for the whole
    process (augment.cpu_memory), so training, generation and scoring steps do not fault their pages in again."""
    device = resolve_device(tc.device)
    _POLICY["threads"] = tc.threads
    governor = ThreadGovernor.for_training(tc.threads, device, ALL_CORES)  # None unless 'adaptive' on a CPU
    start = governor.reading() if governor is not None else None
    torch.set_num_threads(start or thread_count(tc.threads))
    if device.type == "cpu" and tc.keep_cpu_memory:
        keep_freed_memory()
    return device


def loop_governor(device: torch.device | str) -> ThreadGovernor | None:
    """For a long CPU loop after prepare_device (the judge's, the probe's and CAS's training): the governor
    train.threads = 'adaptive' asks for, started at the current count; None for any other setting."""
    governor = ThreadGovernor.for_training(_POLICY["threads"], torch.device(device), ALL_CORES)
    if governor is not None:
        governor.start(torch.get_num_threads())
    return governor
