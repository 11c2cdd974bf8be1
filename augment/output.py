"""Write the output dataset atomically: everything goes into a hidden temp folder beside the target,
which is renamed into place only when complete. A failure at any point leaves no output folder
(and an existing one untouched)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from augment.amount import sample_weights
from augment.atomic import fsync_dir, fsync_tree, temp_name
from augment.columns import SCORE_COLUMNS, score_names
from augment.data.labeled import LabeledImages
from augment.data.names import class_dirs
from augment.errors import OutputError, as_output_error
from augment.fsutil import link_or_copy_tree, pid_alive
from augment.generate import Synthetic
from augment.layout import GAN_DIR
from augment.png_files import write_pngs

IDENTITY_COLUMNS = ["path", "label", "class_name", "split", "is_synthetic", "source_id", "generator", "seed",
                    "latent_index", "round"]


def manifest_columns() -> list[str]:
    """The manifest's columns in order: identity and provenance, the score columns (augment.columns), weight."""
    return [*IDENTITY_COLUMNS, *score_names(), "weight"]


# a path part Hugging Face's imagefolder reads as a split: the word bounded by a separator (-._ space digit, /)
HF_SPLIT_WORD = re.compile(r"(?:^|[-._ 0-9/])(?:train|training|validation|valid|dev|val|test|testing|eval|evaluation)"
                           r"(?:[-._ 0-9/]|$)")


def synthetic_id(label: int, seed: int, latent_index: int) -> str:
    return f"syn-c{label}-s{seed}-{latent_index:06d}"


def check_output_target(out: Path, overwrite: bool) -> None:
    """Refuse before any work if `out` cannot be (re)placed as asked."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out '{out}' exists and is not a folder. Choose another path.")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputError(f"--out '{out}' exists and is not empty. Choose another path, or pass "
                          "--set out.overwrite=true to replace it once the new dataset is complete.")
    check_writable_location(out)


def check_writable_location(out: Path, flag: str = "--out") -> None:
    """Refuse an output whose nearest existing folder above it cannot be written (read-only filesystem,
    permissions): checked before anything is created there, the run's lock included. `flag` names the
    setting in the message (--out, --to, a path argument)."""
    parent = Path(out).absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"Cannot write in '{parent}' (read-only or permission denied). Choose a writable {flag}.")


def read_output(run: str | Path) -> tuple[dict, pd.DataFrame]:
    """A finished output folder's dataset.json and manifest; OutputError if `run` is not one."""
    run = Path(run)
    if not (run / "dataset.json").is_file() or not (run / "manifest.parquet").is_file():
        raise OutputError(f"'{run}' is not an augment output folder (no dataset.json / manifest.parquet).")
    return json.loads((run / "dataset.json").read_text()), pd.read_parquet(run / "manifest.parquet")


def check_not_over_inputs(out: Path, inputs: Sequence[Path], flag: str = "--out") -> None:
    """Refuse an output location that is, contains, or lies inside an input (a data folder, a manifest's
    folder, a config file): writing there, or replacing it with out.overwrite, would destroy the input."""
    target = Path(out).resolve()
    for given in inputs:
        inp = Path(given).resolve()
        if inp.is_relative_to(target) or target.is_relative_to(inp):
            raise OutputError(f"{flag} '{out}' overlaps the input '{given}' (it is, contains or lies inside it), so "
                              f"writing the output could destroy the input. Choose a {flag} outside it.")


def clean_stale_temps(out: Path) -> list[str]:
    """Remove temp folders left by killed exports of this target (their owning process is gone)."""
    removed = []
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        return removed
    prefix = f".{out.name}.tmp-"
    for p in parent.iterdir():
        if p.name.startswith(prefix):
            try:
                pid = int(p.name[len(prefix):].split("-")[0])
            except ValueError:
                continue
            if not pid_alive(pid) or pid == os.getpid():
                shutil.rmtree(p, ignore_errors=True)
                removed.append(str(p))
    return removed


def selection_rank(scores: pd.DataFrame, kept: np.ndarray) -> pd.array:
    """Each kept candidate's place in its class's selection order; missing where not kept."""
    rank = scores["rank"].to_numpy(np.int64) if "rank" in scores else np.full(len(kept), -1)
    out = pd.array(rank, "Int64")
    out[~(kept & (rank >= 0))] = pd.NA
    return out


def build_manifest(real: LabeledImages, synth: Synthetic, scores: pd.DataFrame, dirs: list[str],
                   generator: Callable[[int], str], targets: np.ndarray | None = None,
                   synthetic_weight: float = 1.0) -> pd.DataFrame:
    """One row per image: real rows first in dataset order, then synthetic candidates (kept or not).

    The extra column `_pixel` indexes cat([real.images, synth.images]); the writer drops it."""
    n = len(real)
    labels = real.labels.numpy()
    real_rows = pd.DataFrame({
        "path": [f"images/{dirs[c]}/{sid}.png" for c, sid in zip(labels, real.sample_ids)],
        "label": labels, "class_name": [real.class_names[c] for c in labels], "split": "train",
        "is_synthetic": False, "source_id": real.sample_ids, "generator": "", "seed": pd.array([pd.NA] * n, "Int64"),
        "latent_index": pd.array([pd.NA] * n, "Int64"), "round": pd.array([pd.NA] * n, "Int64"),
        **{c.name: c.values(None, n) for c in SCORE_COLUMNS}, "_pixel": np.arange(n)})
    ys, li = synth.labels.numpy(), synth.latent_index.numpy()
    kept = scores["kept"].to_numpy(bool)
    given = {**{c.name: scores[c.name].to_numpy() if c.name in scores else None for c in SCORE_COLUMNS},
             "kept": kept, "rank": selection_rank(scores, kept)}
    syn_rows = pd.DataFrame({
        "path": [f"{'images' if k else 'rejected'}/{dirs[c]}/{synthetic_id(c, synth.seed, i)}.png"
                 for c, i, k in zip(ys, li, kept)],
        "label": ys, "class_name": [real.class_names[c] for c in ys], "split": "train", "is_synthetic": True,
        "source_id": "", "generator": [generator(c) for c in ys], "seed": pd.array([synth.seed] * len(ys), "Int64"),
        "latent_index": pd.array(li, "Int64"), "round": pd.array(synth.rounds.numpy(), "Int64"),
        **{c.name: c.values(given[c.name], len(ys)) for c in SCORE_COLUMNS}, "_pixel": n + np.arange(len(ys))})
    syn_rows = syn_rows.sort_values(["label", "latent_index"], kind="stable")
    rows = pd.concat([real_rows, syn_rows], ignore_index=True)
    if targets is None:  # balance the classes as they are
        present = rows.loc[~rows["is_synthetic"] | rows["kept"], "label"]
        targets = np.full(real.num_classes, present.value_counts().max())
    rows["weight"] = sample_weights(rows["label"].to_numpy(), rows["is_synthetic"].to_numpy(bool),
                                    rows["kept"].to_numpy(bool), np.asarray(targets), synthetic_weight)
    return rows[manifest_columns() + ["_pixel"]]


def write_dataset(out: Path, real: LabeledImages, synth: Synthetic, scores: pd.DataFrame, meta: dict,
                  *, generator: Callable[[int], str], train_dir: Path | None = None, overwrite: bool = False,
                  extras: Callable[[Path, pd.DataFrame, dict], None] | None = None,
                  workers: int | None = None, targets: np.ndarray | None = None,
                  synthetic_weight: float = 1.0, finish_record: Callable[[dict], dict] | None = None) -> pd.DataFrame:
    """Write images (with images/metadata.csv), manifest.{parquet,csv}, dataset.json, gan/ and whatever
    `extras(folder, manifest, record)` adds (the report), then rename into place. `generator(label)` names the
    model that made a class's synthetic images; `finish_record(meta)` completes dataset.json just before it is
    written (the export's own seconds). Returns the manifest."""
    out = Path(out)
    check_output_target(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out)
    tmp = temp_name(out)
    try:
        tmp.mkdir()
        dirs = class_dirs(real.class_names)
        manifest = build_manifest(real, synth, scores, dirs, generator, targets, synthetic_weight)
        if manifest["path"].duplicated().any():
            dup = manifest.loc[manifest["path"].duplicated(), "path"].iloc[0]
            raise OutputError(f"Two images would be written to '{dup}'; sample ids must be unique.")
        for top in ("images", "rejected"):
            for d in set(dirs):
                (tmp / top / d).mkdir(parents=True, exist_ok=True)
        pixels = torch.cat([real.images, synth.images]).numpy()
        write_pngs(tmp, manifest["path"].tolist(), pixels, manifest.pop("_pixel").tolist(), workers)
        manifest.to_parquet(tmp / "manifest.parquet", index=False)
        manifest.to_csv(tmp / "manifest.csv", index=False)
        write_hf_metadata(tmp, manifest)
        if train_dir is not None and Path(train_dir).is_dir():
            link_or_copy_tree(Path(train_dir), tmp / GAN_DIR)
        meta = {**meta, "class_dirs": dict(zip(real.class_names, dirs)),
                "huggingface": hf_loading(manifest, dirs)}
        if finish_record is not None:
            meta = finish_record(meta)
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=2, default=str))
        if extras is not None:
            extras(tmp, manifest, meta)
        fsync_tree(tmp)  # durable before the rename publishes it
        _swap_into_place(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise as_output_error(exc, out) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def write_hf_metadata(out: Path, manifest: pd.DataFrame) -> None:
    """images/metadata.csv: one row per image under images/ (real and kept synthetic) with every manifest
    column, `file_name` relative to images/. Hugging Face's imagefolder then yields these rows with their
    provenance, from data_dir=RUN and data_dir=RUN/images alike, and nothing else (figures, rejected)."""
    rows = manifest[manifest["path"].str.startswith("images/")]
    rows.insert(0, "file_name", rows["path"].str.slice(len("images/")))
    rows.to_csv(out / "images" / "metadata.csv", index=False)


def hf_loading(manifest: pd.DataFrame, dirs: list[str]) -> dict:
    """How the output loads with Hugging Face datasets. Its imagefolder splits a folder by words in paths
    (train, test, val, ...): a class or sample id holding one would split the images, so say how to load it."""
    paths = [p for p in manifest["path"] if p.startswith("images/")] + [f"images/{d}/" for d in dirs]
    clashes = sorted({p for p in paths if HF_SPLIT_WORD.search(p[len("images/"):])})
    if not clashes:
        return {"load": "datasets.load_dataset('imagefolder', data_dir=RUN)"}
    return {"load": "datasets.load_dataset('imagefolder', data_files={'train': 'RUN/images/**'})",
            "why": f"paths such as {clashes[:3]} hold a word that datasets reads as a split name, so data_dir "
                   "would split the images; data_files names the one split"}


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename tmp to out; an existing out is moved aside first and deleted only after the rename."""
    if out.exists() and any(out.iterdir()):
        old = temp_name(out, "old")
        os.rename(out, old)
        try:
            os.rename(tmp, out)
        except BaseException:
            os.rename(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        if out.exists():
            out.rmdir()
        os.rename(tmp, out)
    fsync_dir(out.parent)
