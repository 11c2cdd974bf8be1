"""Device work serialised per machine by kernel file locks, which die with their holder.

A Prefect global concurrency limit was used before; in Prefect 3.8 its leases live in the server's memory,
so a server restart while a slot was held left that slot taken for good, and every later run waited
forever. `flock` locks are the kernel's: a holder that exits, crashes or is killed releases its slot at
once, whatever happens to the scheduler. `AUGMENT_DEVICE_SLOTS` (default 1) runs more at once.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from augment.errors import ConfigError, as_output_error


def lock_dir() -> Path:
    """`AUGMENT_LOCK_DIR`, or a per-user folder in the system's temporary folder."""
    return Path(os.environ.get("AUGMENT_LOCK_DIR") or Path(tempfile.gettempdir()) / f"augment-locks-{os.getuid()}")


def slot_count() -> int:
    raw = os.environ.get("AUGMENT_DEVICE_SLOTS", "1")
    try:
        slots = int(raw)
    except ValueError:
        slots = 0
    if slots < 1:
        raise ConfigError(f"AUGMENT_DEVICE_SLOTS={raw!r} is not a whole number >= 1; unset it for one run at a time.")
    return slots


def _holder(fd: int) -> str:
    try:
        return os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
    except OSError:
        return "unknown"


@contextmanager
def device_slot(name: str, slots: int | None = None, poll: float = 0.5,
                on_wait: Callable[[str], None] | None = None) -> Iterator[int]:
    """Hold one of `slots` machine-wide slots called `name` (e.g. "augment-cpu") while the block runs.

    Waits for a free slot, calling `on_wait` once with the holders' pids; yields the slot's index.
    """
    slots = slot_count() if slots is None else slots
    folder = lock_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fds = [os.open(folder / f"{name}.{i}.lock", os.O_RDWR | os.O_CREAT, 0o600) for i in range(slots)]
    except OSError as exc:
        raise as_output_error(exc, folder) from exc
    held = None
    told = False
    try:
        while held is None:
            for i, fd in enumerate(fds):
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                held = i
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
                break
            if held is None:
                if on_wait is not None and not told:
                    on_wait(", ".join(_holder(fd) for fd in fds))
                    told = True
                time.sleep(poll)
        yield held
    finally:
        for fd in fds:
            os.close(fd)  # closing releases the flock held on it
