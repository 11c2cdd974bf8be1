"""Readers: a dataset SPEC -> `LabeledImages`, indexing and checking everything before any work starts.

SPEC is one of: an ImageFolder-style directory (`<class>/<image>`), a `.csv`/`.parquet`
manifest with `path,label` columns, a `.npz` with `x`/`y` (or `x_train`/`y_train`; add
`:test` for `x_test`/`y_test`), `digits`, `digits-lt[:train|:test]`, or
`torchvision:NAME:ROOT[:train|:test]` for MNIST, FashionMNIST or CIFAR10 already on disk.
"""

from __future__ import annotations

import hashlib
import os
import pickle  # only through _ArraysOnly, which refuses anything but arrays
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from augment.config import ImageConfig
from augment.data.decode import IMAGE_EXTENSIONS, decode_image
from augment.data.labeled import LabeledImages
from augment.data.longtail import exponential_counts, subsample_per_class
from augment.data.names import safe_component
from augment.data.normalize import MAX_SIZE, normalize_array, normalize_images
from augment.errors import DatasetError

SPEC_HELP = ("an ImageFolder directory, a .csv/.parquet manifest (path,label), a .npz (x,y), "
             "'digits', 'digits-lt[:test]' or 'torchvision:NAME:ROOT'")
TORCHVISION_NAMES = ("MNIST", "FashionMNIST", "CIFAR10")
DIGITS_LT_RATIO = 20.0


@dataclass
class FileIndex:
    """Image files found for a dataset, before decoding: (path, class index, sample id) per image."""

    paths: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)  # folders whose name starts with a dot: not classes


def load_dataset(spec: str, image: ImageConfig | None = None, seed: int = 0,
                 allow_outside_root: bool = False) -> LabeledImages:
    """Read and validate the dataset named by SPEC; raises DatasetError naming the problem.
    A manifest may name files outside its own folder only with `allow_outside_root`."""
    image = image or ImageConfig()
    spec = str(spec)
    name, split = _split_suffix(spec)
    if name == "digits":
        return _from_array_source(*_digits(), image, spec)
    if name == "digits-lt":
        train, test = digits_lt(seed, image)
        return test if split == "test" else train
    if spec.startswith("torchvision:"):
        return _torchvision(spec, image)
    path = Path(name)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _npz(path, split or "train", image, spec)
    if suffix in (".csv", ".parquet"):
        return _decode_index(index_manifest(Path(spec), allow_outside_root), image, spec)
    if path.is_dir():
        return _decode_index(index_folder(path), image, spec)
    if not path.exists():
        raise DatasetError(f"Dataset '{spec}' does not exist. SPEC must be {SPEC_HELP}.")
    raise DatasetError(f"Dataset '{spec}' is not a format augment reads. SPEC must be {SPEC_HELP}.")


def input_paths(spec: str) -> list[Path]:
    """The files and folders a SPEC reads from, which an output must never replace or lie inside: the
    ImageFolder directory, a manifest's folder (its images are named relative to it), the .npz file,
    the torchvision root. Empty for the embedded datasets."""
    name, _ = _split_suffix(str(spec))
    if name in ("digits", "digits-lt"):
        return []
    if name.startswith("torchvision:"):
        parts = name.split(":")
        return [Path(parts[2])] if len(parts) > 2 else []
    path = Path(name)
    return [path.parent if path.suffix.lower() in (".csv", ".parquet") else path]


def _split_suffix(spec: str) -> tuple[str, str | None]:
    for split in ("train", "test"):
        if spec.endswith(f":{split}"):
            return spec[: -len(split) - 1], split
    return spec, None


# ---------------------------------------------------------------- files: folders and manifests

def _file_id(rel: str) -> str:
    stem = safe_component(Path(rel).stem, fallback="img")[:40]
    return f"{stem}-{hashlib.sha1(rel.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
        return True
    except ValueError:
        return False


def index_folder(root: Path) -> FileIndex:
    """`root/<class>/**/<image>` like torchvision's ImageFolder; images directly in `root` with no
    class folders form a single class named after `root`."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"Dataset folder '{root}' does not exist or is not a folder.")
    real_root = root.resolve()
    entries = sorted(os.scandir(root), key=lambda e: e.name)
    class_dirs = [e for e in entries if e.is_dir() and not e.name.startswith(".")]
    loose = [e.name for e in entries if e.is_file() and not e.name.startswith(".")]
    idx = FileIndex()
    if not class_dirs:
        images = [n for n in loose if _is_image(n)]
        if not images:
            raise DatasetError(f"Couldn't find any class folder or image in '{root}'. Expected "
                               f"'{root}/<class_name>/<image>.png' (extensions: {', '.join(IMAGE_EXTENSIONS)}).")
        idx.class_names = [root.resolve().name or "images"]
        for n in images:
            _add_file(idx, root / n, n, 0, real_root)
        idx.skipped = [n for n in loose if not _is_image(n)]
        return idx
    idx.class_names = [e.name for e in class_dirs]
    idx.skipped = list(loose)
    idx.hidden = [e.name for e in entries if e.is_dir() and e.name.startswith(".")]
    owner: dict[Path, tuple[int, str]] = {}  # each real file: the class and path it was first read under
    for ci, d in enumerate(class_dirs):
        found = 0
        for dirpath, filenames in _walk_class(Path(d.path), real_root):
            for n in sorted(filenames):
                p = Path(dirpath) / n
                rel = p.relative_to(root).as_posix()
                if n.startswith("."):
                    continue
                if not _is_image(n):
                    idx.skipped.append(rel)
                    continue
                found += _add_file(idx, p, rel, ci, real_root, owner)
        if found == 0:
            raise DatasetError(f"Class folder '{d.path}' holds no image files "
                               f"({', '.join(IMAGE_EXTENSIONS)}). Add images or remove the folder.")
    return idx


def _walk_class(folder: Path, real_root: Path):
    """os.walk over a class folder that follows links to folders only inside the dataset and never into a
    folder that contains the link (a cycle) or one already walked: those end with a DatasetError."""
    walked = {folder.resolve()}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        keep = []
        for n in sorted(dirnames):
            if n.startswith("."):
                continue
            sub = Path(dirpath) / n
            if sub.is_symlink():
                target = sub.resolve()
                if not _inside(sub, real_root):
                    raise DatasetError(f"'{sub}' is a link to '{target}', outside the dataset folder '{real_root}'. "
                                       "Copy the files into the dataset or remove the link.")
                if sub.parent.resolve().is_relative_to(target) or target in walked:
                    raise DatasetError(f"'{sub}' is a link to '{target}', a folder that contains it or was read "
                                       "already (a cycle). Remove the link.")
            walked.add(sub.resolve())
            keep.append(n)
        dirnames[:] = keep
        yield dirpath, filenames


def _add_file(idx: FileIndex, path: Path, rel: str, label: int, root: Path,
              owner: dict[Path, tuple[int, str]] | None = None) -> int:
    """Index one file; returns 1, or 0 for a second link to a file already read in the same class."""
    if not _inside(path, root):
        raise DatasetError(f"'{path}' is a link to '{path.resolve()}', outside the dataset folder '{root}'. "
                           "Copy the file into the dataset or remove the link.")
    if owner is not None:
        real = path.resolve()
        if real in owner:
            first_label, first_rel = owner[real]
            if first_label != label:
                raise DatasetError(f"'{real}' is reached as '{first_rel}' and as '{rel}', under two classes "
                                   f"('{idx.class_names[first_label]}' and '{idx.class_names[label]}'). "
                                   "Remove the link so that each file has one label.")
            idx.skipped.append(rel)
            return 0
        owner[real] = (label, rel)
    idx.paths.append(path)
    idx.labels.append(label)
    idx.ids.append(_file_id(rel))
    return 1


def _sorted_labels(values: list[str]) -> list[str]:
    """Class order: numeric when every label is an integer, else lexicographic."""
    uniq = set(values)
    try:
        return sorted(uniq, key=int)
    except ValueError:
        return sorted(uniq)


def index_manifest(path: Path, allow_outside_root: bool = False) -> FileIndex:
    """A CSV or Parquet table with `path` and `label` columns; relative paths are from its folder.
    Files outside that folder (absolute or ../ paths, or links out of it) need `allow_outside_root`."""
    import pandas as pd

    if not path.is_file():
        raise DatasetError(f"Manifest '{path}' does not exist.")
    try:
        if path.suffix.lower() == ".csv":
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            df = pd.read_parquet(path)
    except Exception as exc:  # pandas raises many types for unreadable tables
        raise DatasetError(f"Manifest '{path}' cannot be read as {path.suffix[1:]}: {exc}") from None
    missing = [c for c in ("path", "label") if c not in df.columns]
    if missing:
        raise DatasetError(f"Manifest '{path}' lacks column(s) {missing}; it has {list(df.columns)}. "
                           "It needs 'path' and 'label'.")
    if len(df) == 0:
        raise DatasetError(f"Manifest '{path}' has no rows.")
    base = path.parent
    row_offset = 2 if path.suffix.lower() == ".csv" else 0  # CSV: line numbers as an editor shows them
    where = "line" if row_offset else "row"
    labels: list[str] = []
    files: list[tuple[Path, str, int]] = []
    seen: dict[Path, int] = {}
    for i, (p, lab) in enumerate(zip(df["path"].tolist(), df["label"].tolist())):
        row = i + row_offset
        if p is None or (isinstance(p, float) and np.isnan(p)) or str(p).strip() == "":
            raise DatasetError(f"Manifest '{path}' {where} {row}: empty 'path'.")
        if lab is None or (isinstance(lab, float) and np.isnan(lab)) or str(lab).strip() == "":
            raise DatasetError(f"Manifest '{path}' {where} {row}: empty 'label' for '{p}'.")
        f = Path(str(p))
        full = f if f.is_absolute() else base / f
        if not full.is_file():
            raise DatasetError(f"Manifest '{path}' {where} {row}: file '{p}' does not exist "
                               f"(looked for '{full}'). Fix the path or remove the row.")
        key = full.resolve()
        if not allow_outside_root and not _inside(full, base.resolve()):
            raise DatasetError(f"Manifest '{path}' {where} {row}: '{p}' resolves to '{key}', outside the manifest's "
                               "folder. Move the file under it, or set data.allow_outside_root = true if that is "
                               "intended.")
        if key in seen:
            raise DatasetError(f"Manifest '{path}' {where}s {seen[key]} and {row} both name '{key}'. "
                               "Remove the duplicate row.")
        seen[key] = row
        labels.append(str(lab))
        files.append((full, str(p), row))
    idx = FileIndex(class_names=_sorted_labels(labels))
    pos = {n: i for i, n in enumerate(idx.class_names)}
    for (full, rel, _), lab in zip(files, labels):
        idx.paths.append(full)
        idx.labels.append(pos[lab])
        idx.ids.append(_file_id(rel))
    return idx


def _check_class_sizes(counts: list[int], class_names: list[str], example: Callable[[int], str],
                       min_per_class: int = 2) -> None:
    """Every class needs images; a training set needs two per class (one to learn from, one to hold out)."""
    for c, n in enumerate(counts):
        if n == 0:
            raise DatasetError(f"Class '{class_names[c]}' has no images. Add images or remove the class.")
        if n == 1 and min_per_class > 1:
            raise DatasetError(f"Class '{class_names[c]}' has a single image ({example(c)}); at least 2 are needed "
                               "to train and to hold some out. Add images or remove the class.")


def _decode_index(idx: FileIndex, image: ImageConfig, spec: str) -> LabeledImages:
    labels = np.asarray(idx.labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=len(idx.class_names)).tolist()
    _check_class_sizes(counts, idx.class_names, lambda c: f"'{idx.paths[int(np.flatnonzero(labels == c)[0])]}'")
    if len(set(idx.ids)) != len(idx.ids):
        dup = next(i for i in idx.ids if idx.ids.count(i) > 1)
        raise DatasetError(f"Two files of '{spec}' map to the same sample id '{dup}'. Rename one of them.")
    # Photos are decoded at reduced scale (shorter side >= 4 x the largest GAN size): memory stays bounded
    decoded = [decode_image(p, image.max_pixels, max_side=4 * MAX_SIZE) for p in idx.paths]
    notes: dict = {}
    if idx.skipped:
        notes["skipped_files"] = len(idx.skipped)
        notes["skipped_examples"] = idx.skipped[:10]
    if idx.hidden:
        notes["hidden_folders_skipped"] = idx.hidden[:10]
    multi = sum(d.frames > 1 for d in decoded)
    if multi:
        notes["multi_frame_first_frame_used"] = multi
    rotated = sum(d.rotated for d in decoded)
    if rotated:
        notes["exif_rotated_upright"] = rotated
    modes: dict[str, int] = {}
    for d in decoded:
        modes[d.mode] = modes.get(d.mode, 0) + 1
    notes["source_modes"] = modes
    x = normalize_images([d.pixels for d in decoded], image.size, image.channels, notes, [d.shape for d in decoded])
    _note_duplicates(x, notes)
    return LabeledImages(torch.from_numpy(x), torch.from_numpy(labels), list(idx.class_names), list(idx.ids),
                         spec, notes)


def _note_duplicates(x: np.ndarray, notes: dict) -> None:
    """Identical images are kept (they may be meant), but counted in dataset.json."""
    digests = [hashlib.sha1(img.tobytes()).digest() for img in x]
    dup = len(digests) - len(set(digests))
    if dup:
        notes["duplicate_images"] = dup


# ---------------------------------------------------------------- arrays: npz, digits, torchvision

def _from_array_source(x: np.ndarray, y: np.ndarray, class_names: list[str] | None, prefix: str,
                       image: ImageConfig, spec: str, min_per_class: int = 2) -> LabeledImages:
    """Validate (N, H, W[, C]) uint8 images with labels, map labels to 0..K-1, normalise."""
    if x.dtype != np.uint8:
        raise DatasetError(f"'{spec}': images must be uint8, got {x.dtype}. Convert with "
                           "np.clip(x * 255, 0, 255).astype(np.uint8) for [0, 1] floats.")
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 3, 4)):
        raise DatasetError(f"'{spec}': images must have shape (N, H, W) or (N, H, W, C) with C in 1, 3, 4; "
                           f"got {x.shape}.")
    if y.ndim != 1 or len(y) != len(x):
        raise DatasetError(f"'{spec}': labels must have shape ({len(x)},) to match the images; got {y.shape}.")
    if len(x) == 0:
        raise DatasetError(f"'{spec}' holds no images.")
    if class_names is not None:
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= len(class_names):
            raise DatasetError(f"'{spec}': labels must be integers indexing class_names (0..{len(class_names) - 1}).")
        names = [str(n) for n in class_names]
        labels = y.astype(np.int64)
    else:
        raw = [str(v) for v in y.tolist()]
        names = _sorted_labels(raw)
        pos = {n: i for i, n in enumerate(names)}
        labels = np.asarray([pos[v] for v in raw], dtype=np.int64)
    counts = np.bincount(labels, minlength=len(names)).tolist()
    _check_class_sizes(counts, names, lambda c: f"index {int(np.flatnonzero(labels == c)[0])}", min_per_class)
    notes: dict = {}
    xs = normalize_array(x, image.size, image.channels, notes)
    _note_duplicates(xs, notes)
    ids = [f"{prefix}-{i:06d}" for i in range(len(x))]
    return LabeledImages(torch.from_numpy(xs), torch.from_numpy(labels), names, ids, spec, notes)


def _npz(path: Path, split: str, image: ImageConfig, spec: str) -> LabeledImages:
    if not path.is_file():
        raise DatasetError(f"Dataset file '{path}' does not exist.")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            pairs = [("x", "y"), (f"x_{split}", f"y_{split}")] if split == "train" else [(f"x_{split}", f"y_{split}")]
            for kx, ky in pairs:
                if kx in keys and ky in keys:
                    x, y = z[kx], z[ky]
                    names = z["class_names"].tolist() if "class_names" in keys else None
                    break
            else:
                want = " or ".join(f"'{a}'/'{b}'" for a, b in pairs)
                raise DatasetError(f"'{path}' has arrays {sorted(keys)}; expected {want}.")
    except DatasetError:
        raise
    except ValueError as exc:
        raise DatasetError(f"'{path}' cannot be read without unpickling objects ({exc}). "
                           "Save plain numeric arrays with np.savez.") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
        raise DatasetError(f"'{path}' is not a readable .npz file: {exc}") from None
    # 'trainset-000001', not 'train-000001': a split word bounded by '-' would split the output's images
    # for Hugging Face datasets (output.hf_loading)
    return _from_array_source(x, y, names, f"{split}set", image, spec, 1 if split == "test" else 2)


def _digits() -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """scikit-learn's embedded 8x8 digits, scaled from 0..16 to 0..255."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)
    return x, d.target.astype(np.int64), [str(c) for c in range(10)], "digits"


def digits_lt(seed: int = 0, image: ImageConfig | None = None,
              ratio: float = DIGITS_LT_RATIO) -> tuple[LabeledImages, LabeledImages]:
    """digits-LT (docs/benchmarks.md): stratified 60/40 split, then an exponential imbalance (ratio 20) on train."""
    from sklearn.model_selection import train_test_split

    image = image or ImageConfig()
    x, y, names, _ = _digits()
    ids = np.arange(len(y))
    tr, te = train_test_split(ids, test_size=0.4, stratify=y, random_state=seed)
    n_max = int(np.bincount(y[tr]).min())
    keep = tr[subsample_per_class(y[tr], exponential_counts(n_max, 10, ratio), seed)]
    train = _from_array_source(x[keep], y[keep], names, "digits", image, f"digits-lt(seed={seed})")
    test = _from_array_source(x[np.sort(te)], y[np.sort(te)], names, "digits", image,
                              f"digits-lt:test(seed={seed})", min_per_class=1)
    train.sample_ids = [f"digits-{i:06d}" for i in keep]
    test.sample_ids = [f"digits-{i:06d}" for i in np.sort(te)]
    return train, test


def _torchvision(spec: str, image: ImageConfig) -> LabeledImages:
    body, split = _split_suffix(spec)
    parts = body.split(":", 2)
    if len(parts) != 3 or not parts[2]:
        raise DatasetError(f"'{spec}': use torchvision:NAME:ROOT[:train|:test] with NAME one of {TORCHVISION_NAMES}.")
    name = {n.lower(): n for n in TORCHVISION_NAMES}.get(parts[1].lower())
    if name is None:
        raise DatasetError(f"'{spec}': torchvision dataset '{parts[1]}' is not supported; "
                           f"use one of {TORCHVISION_NAMES}.")
    root = Path(parts[2])
    if name == "CIFAR10":
        x, y, classes = _cifar10(root, split or "train", spec)
        return _from_array_source(x, y, classes, "cifar10", image, spec, 1 if split == "test" else 2)
    import torchvision.datasets as tvd  # MNIST and FashionMNIST: raw IDX files, no pickles

    try:
        ds = getattr(tvd, name)(str(root), train=(split or "train") == "train", download=False)
    except RuntimeError as exc:
        raise DatasetError(f"'{spec}': {name} is not in '{root}' ({exc}). augment never downloads; put the "
                           f"dataset's files there first (torchvision's layout, e.g. '{root}/{name}/raw/').") from None
    data = ds.data.numpy() if isinstance(ds.data, torch.Tensor) else np.asarray(ds.data)
    targets = np.asarray(ds.targets, dtype=np.int64)
    return _from_array_source(data.astype(np.uint8, copy=False), targets, list(ds.classes), name.lower(), image, spec,
                              1 if split == "test" else 2)


class _ArraysOnly(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only; anything else (code) is refused."""

    ALLOWED = {(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct", "scalar")}
    ALLOWED |= {("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")


def _cifar10(root: Path, split: str, spec: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """CIFAR-10's python batches (torchvision's layout), read with an unpickler that builds arrays and
    nothing else, so a tampered file cannot run code."""
    folder = root / "cifar-10-batches-py"
    files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    missing = [f for f in files + ["batches.meta"] if not (folder / f).is_file()]
    if missing:
        raise DatasetError(f"'{spec}': CIFAR10 is not in '{folder}' (missing {missing}). augment never downloads; "
                           "put the python version's batches there first.")

    def read(path: Path) -> dict:
        try:
            with open(path, "rb") as fh:
                return _ArraysOnly(fh, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, ValueError, AttributeError) as exc:
            raise DatasetError(f"'{path}' is not a CIFAR-10 batch that can be read safely ({exc}).") from None

    xs, ys = [], []
    for f in files:
        batch = read(folder / f)
        xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        ys.append(np.asarray(batch["labels"], dtype=np.int64))
    classes = [str(c) for c in read(folder / "batches.meta")["label_names"]]
    return np.concatenate(xs), np.concatenate(ys), classes
