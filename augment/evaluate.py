"""`augment evaluate --run DIR --test SPEC`: the downstream arms on a finished run's output, read back
from its files, scored on a test set the user names. Writes evaluation.csv and evaluation.json into
the run folder and adds the downstream table to its report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from augment.atomic import write_json, write_text
from augment.config import ImageConfig
from augment.data.readers import load_dataset
from augment.downstream import build_arms, evaluate_arms, gap_closed, summarise, tail_classes
from augment.errors import DatasetError, OutputError
from augment.report import write_report


def _read(out: Path, paths: list[str], channels: int) -> np.ndarray:
    arrays = [np.asarray(Image.open(out / p)) for p in paths]
    x = np.stack(arrays) if arrays else np.zeros((0, 1, 1), np.uint8)
    return x[:, None] if channels == 1 else x.transpose(0, 3, 1, 2)


def evaluate_run(run: str | Path, test_spec: str, classifiers: tuple[str, ...] = ("logreg", "cnn"),
                 seeds: int = 1, cnn_steps: int = 1000, cnn_width: int = 32) -> tuple[pd.DataFrame, dict]:
    run = Path(run)
    if not (run / "dataset.json").is_file() or not (run / "manifest.parquet").is_file():
        raise OutputError(f"'{run}' is not an augment output folder (no dataset.json / manifest.parquet).")
    meta = json.loads((run / "dataset.json").read_text())
    names, size, channels = meta["class_names"], meta["image"]["size"], meta["image"]["channels"]
    m = pd.read_parquet(run / "manifest.parquet")
    real = m[~m["is_synthetic"]]
    syn = m[m["is_synthetic"] & m["kept"]]
    x, y = _read(run, real["path"].tolist(), channels), real["label"].to_numpy(np.int64)
    xs, ys = _read(run, syn["path"].tolist(), channels), syn["label"].to_numpy(np.int64)
    test = load_dataset(test_spec, ImageConfig(size=size, channels=channels))
    missing = sorted(set(test.class_names) - set(names))
    if missing:
        raise DatasetError(f"Test set '{test_spec}' has classes {missing} that the run does not know; its classes "
                           f"are {names}.")
    remap = np.array([names.index(n) for n in test.class_names])
    y_test = remap[test.labels.numpy()]
    runs = []
    for seed in range(seeds):
        arms = build_arms(x, y, seed, x_aug=xs, y_aug=ys, x_syn=xs, y_syn=ys)
        runs.append(evaluate_arms(arms, test.images.numpy(), y_test, len(names), tail_classes(y, len(names)),
                                  classifiers, seed, cnn_steps=cnn_steps, cnn_width=cnn_width))
    all_runs = pd.concat(runs, ignore_index=True)
    summary = summarise(all_runs)
    gaps = {c: gap_closed(summary, c) for c in classifiers}
    result = {"test": test_spec, "seeds": seeds, "classifiers": list(classifiers), "cnn_steps": cnn_steps,
              "cnn_width": cnn_width, "tail_classes": [names[c] for c in tail_classes(y, len(names))],
              "summary": summary.to_dict(orient="records"), "gap": gaps,
              "runs": all_runs.to_dict(orient="records")}
    write_json(run / "evaluation.json", result)
    write_text(run / "evaluation.csv", summary.to_csv(index=False))
    quality = pd.read_csv(run / "quality.csv") if (run / "quality.csv").exists() else None
    shown = summary[["classifier", "arm", "balanced_accuracy_mean", "balanced_accuracy_std", "macro_f1_mean",
                     "tail_recall_mean"]]
    write_report(run, meta, m, quality, [(f"Downstream evaluation on {test_spec} ({seeds} seed(s))", shown)])
    return summary, gaps
