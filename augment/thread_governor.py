"""train.threads = 'adaptive' while training on the CPU: every core while the rest of the machine is idle, one
fewer for each core that other processes keep busy, re-read every few seconds.

Why: PyTorch's OpenMP threads spin while they wait for each other, so a competing process that holds one
core stalls every parallel region (3.6-4.1x slower on 2 cores), while leaving a core free on a quiet
machine wastes it. The load of the other processes is the machine's busy time (/proc/stat, over the CPUs
this process may run on) less this process's own CPU time. Where /proc/stat cannot be read the governor
does nothing and the count stays what `augment.device.thread_count` set.

The default since it measured 2.22x PyTorch-GAN's own ACGAN loop on a quiet 2-core machine and 1.39-1.68x
beside a busy process (docs/benchmarks.md). The thread count changes the order of floating-point sums, so a
run whose count follows the load is not bit-for-bit repeatable: a fixed `train.threads` ('auto', all cores
but one, or a number) is, and is what a run that must repeat exactly should set.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from augment.fsutil import allowed_cpus

PROC_STAT = Path("/proc/stat")
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def busy_cpu_seconds(cpus: set[int], stat: Path = PROC_STAT) -> float | None:
    """Seconds the given CPUs spent busy since boot (all but idle and iowait; steal counts as busy, since
    another guest held the core), or None where /proc/stat is missing or unreadable."""
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return None
    busy, seen = 0, 0
    for line in lines:
        if not line.startswith("cpu"):  # the other lines (intr: thousands of counters) are not split at all
            continue
        name, *fields = line.split()
        if not (name[3:].isdigit() and int(name[3:]) in cpus):
            continue
        ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
        busy += sum(ticks) - ticks[3] - ticks[4]
        seen += 1
    return busy / TICK if seen else None


def threads_for(free_cores: float, most: int) -> int:
    """Threads to run with when `free_cores` cores are left by the other processes: that many, rounded,
    from one to `most`. A core another process keeps half busy or more counts as taken."""
    return max(1, min(most, round(free_cores - 1e-9)))


@dataclass
class ThreadGovernor:
    """Call `tick()` once per training step; every `interval` seconds it reads the load of the other
    processes and sets torch's thread count. It lowers the count at once (a spinning thread that shares a
    core stalls every step) and raises it only after `patience` windows in a row ask for more (a short
    burst elsewhere should not make the count flap)."""

    most: int  # the most threads to use (torch's own count: one per core, or OMP_NUM_THREADS)
    cores_here: int  # the cores this process may run on, whose load read_busy sums
    read_busy: Callable[[], float | None]  # busy seconds of those cores so far
    interval: float = 2.0
    patience: int = 2
    clock: Callable[[], float] = time.perf_counter
    own_cpu: Callable[[], float] = time.process_time  # this process's CPU seconds, every thread
    set_threads: Callable[[int], None] = torch.set_num_threads
    history: list[list] = field(default_factory=list)  # [seconds since start, thread count] at each change
    threads: int = 0
    _mark: tuple[float, float, float] | None = None
    _wanting_more: int = 0
    _t0: float = 0.0

    @classmethod
    def for_training(cls, setting: int | str, device: torch.device, most: int) -> ThreadGovernor | None:
        """A governor where train.threads is 'adaptive', training is on the CPU, there are cores to share and
        the load can be read; None otherwise (the count set at the start stays)."""
        cpus = allowed_cpus()
        if setting != "adaptive" or device.type != "cpu" or most < 2 or busy_cpu_seconds(cpus) is None:
            return None
        return cls(most=most, cores_here=len(cpus), read_busy=lambda: busy_cpu_seconds(cpus))

    def start(self, threads: int) -> None:
        """Begin the first window, running with `threads` now."""
        self.threads, self._t0 = threads, self.clock()
        self.history = [[0.0, threads]]
        self._mark = self._read()

    def _read(self) -> tuple[float, float, float] | None:
        busy = self.read_busy()
        return None if busy is None else (self.clock(), busy, self.own_cpu())

    def reading(self, window: float = 0.2, sleep: Callable[[float], None] = time.sleep) -> int | None:
        """The thread count the other processes' load over the next `window` seconds leaves room for, or None
        where it cannot be read. A stage starts at it, so that a quiet machine is used whole from its first
        step instead of after the governor's first windows."""
        self._mark = self._read()
        sleep(window)
        return self._wanted()

    def _wanted(self) -> int | None:
        """Threads for the load since the last reading (which becomes the mark); None where unreadable."""
        now = self._read() if self._mark is not None else None
        if now is None or now[0] <= self._mark[0]:
            self._mark = None  # the load stopped being readable: leave the count as it is
            return None
        wall, busy, own = (b - a for a, b in zip(self._mark, now))
        self._mark = now
        return threads_for(self.cores_here - max(0.0, (busy - own) / wall), self.most)

    def tick(self) -> None:
        if self._mark is None or self.clock() - self._mark[0] < self.interval:
            return
        want = self._wanted()
        if want is None:
            return
        if want < self.threads:
            self._apply(want)
        elif want > self.threads:
            self._wanting_more += 1
            if self._wanting_more >= self.patience:
                self._apply(want)
        else:
            self._wanting_more = 0

    def _apply(self, n: int) -> None:
        self.set_threads(n)
        self.threads, self._wanting_more = n, 0
        self.history.append([round(self.clock() - self._t0, 1), n])
