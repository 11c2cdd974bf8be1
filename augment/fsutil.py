"""Small OS helpers shared by export, the training cache, the run lock and the CPU counts (torch-free:
the PNG writer's worker processes import them)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def allowed_cpus() -> set[int]:
    """The CPUs this process may run on (its affinity; every CPU where the platform cannot say)."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def link_or_copy(src: str | Path, dst: str | Path) -> None:
    """Hard-link a file where the filesystem allows (cheap; the source stays intact), else copy it."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def link_or_copy_tree(src: Path, dst: Path) -> None:
    """Copy a folder, hard-linking its files where the filesystem allows."""
    shutil.copytree(src, dst, copy_function=link_or_copy)
