"""Scheduled runs over many datasets (`flows/augment_all.py`): the datasets file and the `latest` link.

    out_root = "data/runs/nightly"        # where each dataset's runs go (per dataset overridable)
    [defaults]                            # settings for every dataset, same keys as a run config
    train = { steps = 500 }
    [[datasets]]
    name = "digits"                       # folder name under out_root
    data = "digits"                       # any SPEC
    config = { balance = { sampling_strategy = "target:250" } }

Each dataset's runs land in `<out_root>/<name>/runs/<run key>/`, and `<out_root>/<name>/latest`
points at the newest complete one. Optional top-level keys: `cache` (the training cache's folder,
default <out_root>/.augment-cache) and `cache_max_gb` (default 20: after a run the cache's least
recently used entries are removed down to this).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from augment.config import build_config, deep_merge, read_toml
from augment.data.names import safe_component
from augment.errors import ConfigError

TOP_KEYS = {"out_root", "defaults", "datasets", "cache", "cache_max_gb"}
CACHE_MAX_GB = 20.0  # the training cache's default bound: least recently used entries go first
DATASET_KEYS = {"name", "data", "out_root", "config"}


@dataclass
class DatasetJob:
    name: str
    data: str
    out_root: str
    config: dict[str, Any] = field(default_factory=dict)  # merged: defaults, then the dataset's own
    error: str | None = None  # a config problem found up front; the job is reported failed, others run


class Jobs(NamedTuple):
    jobs: list[DatasetJob]
    cache: str  # the training cache's folder
    cache_max_bytes: int  # what augment.cache.prune leaves it after a scheduled run


def read_jobs(path: str | Path) -> Jobs:
    """Parse and validate every dataset's settings up front: the jobs, the cache folder and its bound."""
    path = Path(path)
    doc = read_toml(path)
    unknown = set(doc) - TOP_KEYS
    if unknown:
        raise ConfigError(f"'{path}': unknown top-level key(s) {sorted(unknown)}; accepted: {sorted(TOP_KEYS)}.")
    datasets = doc.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        raise ConfigError(f"'{path}' lists no [[datasets]]; add at least one with name and data.")
    root = doc.get("out_root", "data/runs")
    defaults = doc.get("defaults", {})
    jobs, names = [], set()
    for i, ds in enumerate(datasets):
        where = f"'{path}' datasets[{i}]"
        if not isinstance(ds, dict) or not {"name", "data"} <= set(ds):
            raise ConfigError(f"{where} needs 'name' and 'data'.")
        bad = set(ds) - DATASET_KEYS
        if bad:
            raise ConfigError(f"{where}: unknown key(s) {sorted(bad)}; accepted: {sorted(DATASET_KEYS)}.")
        name = safe_component(str(ds["name"]))
        if name != ds["name"] or name in names:
            raise ConfigError(f"{where}: name {ds['name']!r} must be a unique plain folder name.")
        names.add(name)
        out_root = str(_resolve(ds.get("out_root", root)))
        data = str(ds["data"])
        if not (data in ("digits", "digits-lt") or data.startswith(("digits-lt:", "torchvision:"))):
            data = str(_resolve(data))
        merged = deep_merge(defaults, ds.get("config", {}))
        job = DatasetJob(name, data, out_root, merged)
        try:
            build_config(base=merged)
        except ConfigError as exc:
            job.error = str(exc)
        jobs.append(job)
    cache = str(_resolve(doc.get("cache", Path(root) / ".augment-cache")))
    max_gb = doc.get("cache_max_gb", CACHE_MAX_GB)
    if isinstance(max_gb, bool) or not isinstance(max_gb, int | float) or not max_gb > 0:
        raise ConfigError(f"'{path}': cache_max_gb = {max_gb!r}; use a number of gigabytes above 0 (default "
                          f"{CACHE_MAX_GB:g}): the training cache is pruned to it after each scheduled run.")
    return Jobs(jobs, cache, int(max_gb * 1e9))


def _resolve(p: str | Path) -> Path:
    """Relative paths in the file are relative to the directory the command runs in."""
    p = Path(p)
    return p if p.is_absolute() else (Path.cwd() / p)


def point_latest(out_root: str | Path, name: str, target: Path) -> Path:
    """Atomically make <out_root>/<name>/latest a relative link to `target`."""
    link = Path(out_root) / name / "latest"
    tmp = link.with_name(f".latest.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    os.symlink(os.path.relpath(target, link.parent), tmp)
    os.replace(tmp, link)
    return link
