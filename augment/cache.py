"""A keyed store of finished trainings under an output root, so that a scheduled rerun over unchanged
data and training settings reuses the checkpoints instead of training again, and the fitted external
judge, which depends on the data alone, is not fitted again when only the GAN or selection settings change.

Keys hash the dataset fingerprint, every setting the weights depend on, and augment's version.
Entries are published by rename, so a reader never sees half of one; the store is plain files, so
it survives restarts and works for workers that share the filesystem.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path

from augment.atomic import write_json
from augment.checkpoint import file_sha256
from augment.config import Config, train_settings
from augment.fsutil import link_or_copy, link_or_copy_tree
from augment.layout import CANDIDATE_SCORES, JUDGE_FILE
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


SUMS = "cache-entry.json"  # in each entry: augment's version and every file's sha256
log = logging.getLogger("augment")


def judge_key(fingerprint: str, external: str) -> str:
    """What a fitted external judge depends on: the data, its recipe (`score.candidates.external_key`) and
    augment's version; not the GAN, the plan or the selection settings."""
    material = {"fingerprint": fingerprint, "version": __version__, "external": external}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class TrainingCache:
    """Finished trainings under <root>/<kind>/<key>/, each complete when its `done` file is there: GAN
    trainings ('train', result.json) and, for the 'cnn' judge, fitted external judges ('judge', external.pt)."""

    def __init__(self, root: str | Path, kind: str = "train", done: str = "result.json"):
        self.root = Path(root) / kind
        self.done = done

    def entry(self, key: str) -> Path:
        return self.root / key

    def has(self, key: str) -> bool:
        return (self.entry(key) / self.done).is_file()

    def restore(self, key: str, train_dir: Path) -> bool:
        """Copy (hard-link where possible) a finished training into train_dir, whole or not at all; False on a
        miss. An entry whose files do not match the checksums written when it was published (truncated, edited,
        or from a version of augment that wrote none) is removed and counts as a miss: it is trained again,
        never loaded. An entry pruned while it is copied is a miss too. A hit marks the entry as used (`prune`)."""
        if not self.has(key):
            return False
        problem = self.check(key)
        if problem:
            log.warning("training cache entry %s dropped (%s); training again", key[:12], problem)
            shutil.rmtree(self.entry(key), ignore_errors=True)
            return False
        # copied beside train_dir and renamed into place: a run killed meanwhile never resumes from half a copy
        tmp = train_dir.with_name(f".{train_dir.name}.restore-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            link_or_copy_tree(self.entry(key), tmp)
        except OSError as exc:
            log.warning("training cache entry %s went away while it was read (%s); a miss", key[:12], exc)
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        try:
            os.utime(self.entry(key) / SUMS)  # last use, for prune's least-recently-used order
        except OSError:  # a read-only cache is still a cache
            pass
        (tmp / SUMS).unlink(missing_ok=True)  # the cache's record, not part of the training
        if train_dir.exists():
            shutil.rmtree(train_dir)
        os.rename(tmp, train_dir)
        return True

    def check(self, key: str) -> str | None:
        """What is wrong with an entry (None when every file matches its recorded sha256 and version)."""
        entry = self.entry(key)
        try:
            sums = json.loads((entry / SUMS).read_text())
        except (OSError, ValueError):
            return f"no readable {SUMS}"
        if sums.get("augment_version") != __version__:
            return f"written by augment {sums.get('augment_version')}, this is {__version__}"
        files = {p.relative_to(entry).as_posix() for p in entry.rglob("*") if p.is_file() and p.name != SUMS}
        if files != set(sums.get("files", {})):
            return "its files differ from those recorded"
        for name, digest in sums["files"].items():
            if file_sha256(entry / name) != digest:
                return f"{name} does not match its checksum"
        return None

    def publish(self, key: str, source: Path) -> None:
        """Add a finished training (a folder, or one file); if another worker published the same key first,
        keep theirs."""
        if self.has(key):
            return
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{key}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            if source.is_dir():
                link_or_copy_tree(source, tmp)
            else:
                tmp.mkdir()
                link_or_copy(source, tmp / source.name)
            files = {p.relative_to(tmp).as_posix(): file_sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
            write_json(tmp / SUMS, {"augment_version": __version__, "files": files})
            try:
                os.rename(tmp, self.entry(key))
            except OSError:  # published concurrently by someone else
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def judge_cache(root: str | Path) -> TrainingCache:
    """The fitted 'cnn' external judges under <root>/judge/<judge_key>/external.pt."""
    return TrainingCache(root, "judge", JUDGE_FILE)


def scores_cache(root: str | Path) -> TrainingCache:
    """Candidate scores of a finished run under <root>/scores/<sha256 of score.candidates.scorer_key>/,
    reused by content (`score.candidates.row_keys`) when a rerun generates the same candidates."""
    return TrainingCache(root, "scores", CANDIDATE_SCORES)


STALE_SECONDS = 86_400  # a hidden half-published or half-removed entry older than this was left by a crash


def prune(root: str | Path, max_bytes: int) -> list[str]:
    """Remove the least recently used entries of every kind (by publication or last restore) until the
    cache holds at most max_bytes; returns the 'kind/key' of each one removed. An entry is renamed away
    before it is deleted, so a reader sees it whole or not at all (`restore` takes a vanished one as a miss);
    hidden leftovers of killed publications older than a day go too."""
    entries = []
    for kind in sorted(p for p in Path(root).iterdir() if p.is_dir()) if Path(root).is_dir() else []:
        for entry in (e for e in kind.iterdir() if e.is_dir()):
            if entry.name.startswith("."):  # a publication or removal under way, or left by a killed process
                if time.time() - entry.stat().st_mtime > STALE_SECONDS:
                    shutil.rmtree(entry, ignore_errors=True)
                continue
            stamp = entry / SUMS
            used = (stamp if stamp.exists() else entry).stat().st_mtime
            entries.append((used, entry, sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())))
    total = sum(size for _, _, size in entries)
    removed = []
    for _, entry, size in sorted(entries, key=lambda e: e[0]):
        if total <= max_bytes:
            break
        doomed = entry.with_name(f".{entry.name}.pruned-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(entry, doomed)
        except OSError:  # removed by another process meanwhile
            continue
        shutil.rmtree(doomed, ignore_errors=True)
        total -= size
        removed.append(f"{entry.parent.name}/{entry.name}")
    return removed
