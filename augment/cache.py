"""A keyed store of finished trainings under an output root, so that a scheduled rerun over unchanged
data and training settings reuses the checkpoints instead of training again.

Keys hash the dataset fingerprint, every setting the weights depend on, and augment's version.
Entries are published by rename, so a reader never sees half of one; the store is plain files, so
it survives restarts and works for workers that share the filesystem.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from augment.config import Config, train_settings
from augment.fsutil import link_or_copy_tree
from augment.variants import rules_for
from augment.version import __version__

# Settings that change how training runs, not what it produces (declared `in_key=False` in augment.config).
NOT_IN_KEY = train_settings("in_key", False)


def training_key(fingerprint: str, cfg: Config) -> str:
    d = cfg.to_dict()
    material = {"fingerprint": fingerprint, "version": __version__, "seed": d["seed"], "image": d["image"],
                "model": d["model"], "train": {k: v for k, v in d["train"].items() if k not in NOT_IN_KEY},
                # per-class variants train one model per class that needs images, so the plan matters
                "plan": None if rules_for(cfg.model.variant).conditional else d["balance"]}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def run_key(fingerprint: str, cfg: Config) -> str:
    """Everything a run's output depends on: same key, same manifest rows."""
    d = cfg.to_dict()
    d["train"] = {k: v for k, v in d["train"].items() if k not in NOT_IN_KEY}
    d.pop("out")
    return hashlib.sha256(json.dumps({"fingerprint": fingerprint, "version": __version__, "config": d},
                                     sort_keys=True).encode()).hexdigest()


class TrainingCache:
    def __init__(self, root: str | Path):
        self.root = Path(root) / "train"

    def entry(self, key: str) -> Path:
        return self.root / key

    def has(self, key: str) -> bool:
        return (self.entry(key) / "result.json").is_file()

    def restore(self, key: str, train_dir: Path) -> bool:
        """Copy (hard-link where possible) a finished training into train_dir; False on a miss."""
        if not self.has(key):
            return False
        if train_dir.exists():
            shutil.rmtree(train_dir)
        link_or_copy_tree(self.entry(key), train_dir)
        return True

    def publish(self, key: str, train_dir: Path) -> None:
        """Add a finished training; if another worker published the same key first, keep theirs."""
        if self.has(key):
            return
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{key}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            link_or_copy_tree(train_dir, tmp)
            try:
                os.rename(tmp, self.entry(key))
            except OSError:  # published concurrently by someone else
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
