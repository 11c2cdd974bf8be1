"""`augment export`: a chosen subset of a finished run in a chosen format, written atomically.

Formats: 'imagefolder' (TO/<class>/<file>.png plus manifest.csv and metadata.csv), 'npz' (TO, one file: uint8 `x`,
`y`, `class_names` of the classes present in the subset, `run_label` (the run's class index), and
every manifest column as an array of the same name), 'csv' (TO/labels.csv
with `path,label` plus every manifest column, and the images under TO/images/). Each of them reads
back with augment's own readers. The manifest's provenance columns travel with every row.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from PIL import Image

from augment.atomic import fsync_dir, fsync_file, fsync_tree, temp_name
from augment.data.names import safe_component
from augment.errors import ConfigError, OutputError, as_output_error
from augment.output import read_output
from augment.run_checks import guarded_lock

ExportWriter = Callable[[Path, Path, dict, pd.DataFrame], None]  # (run, temp target, dataset.json, rows)


@dataclass(frozen=True)
class ExportFormat:
    """An export format: its writer fills the temp target (a folder or one file) from a run's rows; export_run
    makes it atomic. `help` is what the CLI says of it."""

    name: str
    write: ExportWriter
    help: str


FORMATS: dict[str, ExportFormat] = {}  # the one table of formats; the CLI takes its --format choices from it


def register_format(fmt: ExportFormat) -> ExportFormat:
    FORMATS[fmt.name] = fmt
    return fmt


def _rows(run: Path, synthetic_only: bool, kept_only: bool) -> tuple[dict, pd.DataFrame]:
    meta, m = read_output(run)
    check_manifest(run, m, meta)
    if kept_only:
        m = m[m["kept"]]
    if synthetic_only:
        m = m[m["is_synthetic"]]
    if m.empty:
        raise OutputError(f"Nothing to export from '{run}' with synthetic_only={synthetic_only}, "
                          f"kept_only={kept_only}.")
    return meta, m.reset_index(drop=True)


def check_manifest(run: Path, m: pd.DataFrame, meta: dict) -> None:
    """Every row names a file `images|rejected/<its class's folder>/<file>.png` inside the run folder: an
    edited manifest must not make export read or write anywhere else."""
    dirs = meta.get("class_dirs", {})
    for i, (path, name) in enumerate(zip(m["path"].astype(str), m["class_name"].astype(str))):
        parts = PurePosixPath(path).parts
        ok = (len(parts) == 3 and parts[0] in ("images", "rejected") and parts[1] == dirs.get(name, parts[1])
              and parts[1] == safe_component(parts[1]) and parts[2] == safe_component(parts[2])
              and (run / path).resolve().is_relative_to(run.resolve()))
        if not ok:
            raise OutputError(f"'{run}/manifest.parquet' row {i} names '{path}' for class {name!r}, which is not "
                              "an image of that class inside the run folder (outside the run folder, or edited). "
                              "Export refuses it; restore the manifest or rerun.")


def _check_target(run: Path, to: Path) -> None:
    if to.resolve().is_relative_to(run.resolve()):
        raise OutputError(f"--to '{to}' is inside the run folder '{run}'. Export next to the run, not into it.")
    if to.exists() or to.is_symlink():
        raise OutputError(f"--to '{to}' exists. Choose a new path; export never replaces what is there.")
    for parent in to.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"--to '{to}': '{parent}' is not a folder. Choose another path.")
            break


def export_run(run: str | Path, to: str | Path, fmt: str, synthetic_only: bool = False,
               kept_only: bool = False) -> dict:
    """Write the chosen rows of a finished run to `to` (which must not exist), through the same guard as a
    run (`guarded_lock`: not over the run, a writable place, `to`'s lock held)."""
    run, to = Path(run), Path(to)
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {list(FORMATS)}. Got {fmt!r} instead.")
    writer = FORMATS[fmt].write
    _check_target(run, to)
    meta, rows = _rows(run, synthetic_only, kept_only)
    with guarded_lock(None, to, to.parent / f".{to.name}.lock", [run], flag="--to"):
        _check_target(run, to)  # another export may have finished while this one waited
        tmp = temp_name(to)
        try:
            writer(run, tmp, meta, rows)
            if tmp.is_dir():
                fsync_tree(tmp)
            else:
                fsync_file(tmp)
            os.rename(tmp, to)
            fsync_dir(to.parent)
        except BaseException as exc:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise as_output_error(exc, to) from exc
            raise
    return {"to": str(to), "format": fmt, "rows": len(rows), "synthetic": int(rows["is_synthetic"].sum()),
            "classes": sorted(rows["class_name"].unique().tolist())}


def _with_source(rows: pd.DataFrame, run: Path, new_paths: list[str]) -> pd.DataFrame:
    out = rows.copy()
    out.insert(0, "run_path", [str(run / p) for p in rows["path"]])
    out["path"] = new_paths
    return out


def _copy_images(run: Path, root: Path, rows: pd.DataFrame, prefix: str,
                 rename: dict[str, str] | None = None) -> list[str]:
    paths = []
    for p in rows["path"]:
        rel = Path(p)
        folder = (rename or {}).get(rel.parent.name.lower(), rel.parent.name)
        dest = Path(prefix) / folder / rel.name  # <prefix>/<class dir>/<file>
        (root / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run / p, root / dest)
        paths.append(dest.as_posix())
    return paths


def _imagefolder(run: Path, tmp: Path, meta: dict, rows: pd.DataFrame) -> None:
    """TO/<the run's class folder>/<file>.png; a class whose folder is named like the manifest or metadata
    file gets `-class` appended (manifest.csv keeps every row's class_name and label as the run has them).
    metadata.csv holds the same rows with `file_name`, for Hugging Face's imagefolder."""
    tmp.mkdir()
    new = _copy_images(run, tmp, rows, ".", rename={n: f"{n}-class" for n in ("manifest.csv", "metadata.csv")})
    table = _with_source(rows, run, new)
    table.to_csv(tmp / "manifest.csv", index=False)
    table.insert(0, "file_name", table["path"])
    table.to_csv(tmp / "metadata.csv", index=False)


def _csv(run: Path, tmp: Path, meta: dict, rows: pd.DataFrame) -> None:
    tmp.mkdir()
    new = _copy_images(run, tmp, rows, "images")
    table = _with_source(rows, run, new)
    table.insert(1, "label_index", table.pop("label"))
    table.insert(1, "label", table["class_name"])
    table.to_csv(tmp / "labels.csv", index=False)


def _npz(run: Path, tmp: Path, meta: dict, rows: pd.DataFrame) -> None:
    x = np.stack([np.asarray(Image.open(run / p)) for p in rows["path"]])
    # Only the classes present in this subset (synthetic-only exports lack the majority class), so
    # that every class in the file has images; `label` keeps the run's original class index.
    present = sorted(rows["label"].unique().tolist())
    remap = {old: new for new, old in enumerate(present)}
    arrays = {"x": x, "y": rows["label"].map(remap).to_numpy(np.int64),
              "class_names": np.array([meta["class_names"][i] for i in present], dtype=str),
              "run_label": rows["label"].to_numpy(np.int64)}
    for col in rows.columns:
        if col in ("label",):
            continue
        values = rows[col]
        if values.dtype == bool or str(values.dtype) == "boolean":
            arrays[col] = values.fillna(False).to_numpy(bool)
        elif pd.api.types.is_numeric_dtype(values):
            arrays[col] = values.astype("float64").to_numpy(na_value=np.nan)
        else:
            arrays[col] = values.fillna("").astype(str).to_numpy(dtype=str)
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


register_format(ExportFormat("imagefolder", _imagefolder, "TO/<class>/<file>.png with manifest.csv and metadata.csv"))
register_format(ExportFormat("npz", _npz, "one .npz: uint8 x, y, class_names and every manifest column"))
register_format(ExportFormat("csv", _csv, "TO/labels.csv (path,label and every manifest column) and TO/images/"))
