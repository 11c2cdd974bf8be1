"""What a run records about where it came from: package versions and timestamps."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from importlib import metadata

PACKAGES = ("augment", "torch", "torchvision", "numpy", "pillow", "scikit-learn", "pandas", "pyarrow",
            "imbalanced-learn", "prefect")


def package_versions() -> dict[str, str | None]:
    """Installed versions (None where absent), read from metadata so nothing heavy gets imported."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
