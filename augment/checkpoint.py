"""Checkpoints: written atomically (augment.atomic); read with `weights_only=True`; never pickled modules."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any, BinaryIO

import torch

from augment.atomic import write_bytes

CKPT_RE = re.compile(r"^ckpt-(\d{7})\.pt$")
BEST = "best.pt"


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    # Serialise in memory first: file errors then surface as OSError (a full disk is reported as one)
    # rather than as torch's RuntimeError from inside its zip writer.
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes(path, buf.getbuffer())


def load_checkpoint(path: Path | BinaryIO, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    return torch.load(path, map_location=map_location, weights_only=True)


def checkpoint_path(ckpt_dir: Path, step: int) -> Path:
    return Path(ckpt_dir) / f"ckpt-{step:07d}.pt"


def list_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of every step checkpoint, oldest first."""
    if not Path(ckpt_dir).is_dir():
        return []
    found = [(int(m.group(1)), p) for p in Path(ckpt_dir).iterdir() if (m := CKPT_RE.match(p.name))]
    return sorted(found)


def latest_loadable(ckpt_dir: Path, map_location="cpu") -> tuple[dict[str, Any] | None, list[str]]:
    """The newest checkpoint that loads; unreadable ones are reported (and skipped), never trusted."""
    problems: list[str] = []
    for step, path in reversed(list_checkpoints(ckpt_dir)):
        try:
            return load_checkpoint(path, map_location), problems
        except Exception as exc:  # a truncated zip raises RuntimeError, others OSError/EOFError
            problems.append(f"checkpoint '{path}' (step {step}) is unreadable ({type(exc).__name__}: {exc}); skipped")
    return None, problems


def prune(ckpt_dir: Path, keep: int) -> None:
    """Delete all but the newest `keep` step checkpoints (best.pt is a separate file and stays)."""
    for _, path in list_checkpoints(ckpt_dir)[:-keep]:
        path.unlink(missing_ok=True)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def generating_weights(state: dict[str, Any]) -> dict[str, Any]:
    """The generator weights a checkpoint generates with: the EMA generator where training kept one."""
    return state["generator_ema"] if state.get("generator_ema") is not None else state["generator"]


def load_with_sha256(path: Path) -> tuple[dict[str, Any], str]:
    """A checkpoint's state and its file's sha256 from one read of the file."""
    data = Path(path).read_bytes()
    return load_checkpoint(io.BytesIO(data)), hashlib.sha256(data).hexdigest()


def generator_sha256(state: dict[str, Any]) -> str:
    """sha256 of the weights a checkpoint generates with: equal weights give an equal digest however
    the file was written (torch.save's bytes differ between processes)."""
    weights = generating_weights(state)
    h = hashlib.sha256()
    for name in sorted(weights):
        t = weights[name].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
