"""A lock file per run folder, so two runs over the same output root never write the same run.

The lock is a file created with O_EXCL holding host, pid and time. A lock whose process is gone
(same host) or that is older than `stale_after` seconds (another host) is taken over; otherwise
the caller waits up to `timeout` seconds and then gets a RunLockedError naming the holder.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from augment.errors import AugmentError, as_output_error
from augment.fsutil import pid_alive


class RunLockedError(AugmentError):
    """Another run holds the lock."""


def _stale(path: Path, stale_after: float) -> bool:
    try:
        holder = json.loads(path.read_text())
        age = time.time() - path.stat().st_mtime
    except (OSError, ValueError):
        return True  # unreadable or vanished: a crashed writer
    if holder.get("host") == socket.gethostname():
        return not pid_alive(int(holder.get("pid", -1)))
    return age > stale_after


def _holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text())
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder["since"])))
        return f"pid {holder['pid']} on host {holder['host']} (since {since})"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that left no readable record"


@contextmanager
def run_lock(path: str | Path, timeout: float = 0.0, stale_after: float = 6 * 3600,
             poll: float = 1.0) -> Iterator[Path]:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise as_output_error(exc, path.parent) from exc
    me = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()})
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _stale(path, stale_after):
                path.unlink(missing_ok=True)
                continue
            if time.monotonic() >= deadline:
                raise RunLockedError(f"Another run is writing here: the lock '{path}' is held by {_holder(path)}. "
                                     "Wait for it to finish, or remove the lock file if that run is gone.") from None
            time.sleep(poll)
            continue
        except OSError as exc:  # a read-only, full or forbidden location: exit 2 naming it, not a traceback
            raise as_output_error(exc, path) from exc
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(me)
        except OSError as exc:  # created but not written (a full disk): leave nothing behind
            path.unlink(missing_ok=True)
            raise as_output_error(exc, path) from exc
        break
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
