"""`augment evaluate --run DIR --test SPEC`: the downstream arms on a finished run's output, read back
from its files, scored on a test set the user names. Writes downstream.csv and downstream.json into
the run folder and adds the downstream table to its report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from augment.atomic import write_json, write_text
from augment.config import ImageConfig
from augment.data.readers import load_dataset
from augment.downstream import (
    build_arms,
    evaluate_arms,
    gap_closed,
    paired_differences,
    summarise,
    tail_classes,
    weighted_output,
)
from augment.errors import DatasetError
from augment.output import read_output
from augment.report import write_report


def _read(out: Path, paths: list[str], channels: int) -> np.ndarray:
    arrays = [np.asarray(Image.open(out / p)) for p in paths]
    x = np.stack(arrays) if arrays else np.zeros((0, 1, 1), np.uint8)
    return x[:, None] if channels == 1 else x.transpose(0, 3, 1, 2)


def _read_run(run: Path) -> tuple:
    """The run's dataset.json and manifest, its real and kept synthetic images and labels, and the
    manifest's weights of those rows (None for runs written before weights existed)."""
    meta, m = read_output(run)
    channels = meta["image"]["channels"]
    real = m[~m["is_synthetic"]]
    syn = m[m["is_synthetic"] & m["kept"]]
    x, y = _read(run, real["path"].tolist(), channels), real["label"].to_numpy(np.int64)
    xs, ys = _read(run, syn["path"].tolist(), channels), syn["label"].to_numpy(np.int64)
    weights = np.concatenate([real["weight"], syn["weight"]]) if "weight" in m.columns else None
    return meta, m, x, y, xs, ys, weights


def evaluate_run(run: str | Path, test_spec: str, classifiers: tuple[str, ...] = ("logreg", "cnn"),
                 seeds: int = 1, cnn_steps: int = 1000, cnn_width: int = 32,
                 augmentation: str = "shift") -> tuple[pd.DataFrame, dict]:
    """Every arm on every seed (paired: the same seeds for every arm), scored on `test_spec`; the summary
    carries each arm's paired bootstrap intervals against random oversampling and the best classical arm.
    The augmented arm is the output as a user receives it: real and kept synthetic images with their
    manifest weights; the stacked arms take the same synthetic images. augmentation: every CNN arm's."""
    run = Path(run)
    meta, m, x, y, xs, ys, weights = _read_run(run)
    names, size, channels = meta["class_names"], meta["image"]["size"], meta["image"]["channels"]
    test = load_dataset(test_spec, ImageConfig(size=size, channels=channels))
    missing = sorted(set(test.class_names) - set(names))
    if missing:
        raise DatasetError(f"Test set '{test_spec}' has classes {missing} that the run does not know; its classes "
                           f"are {names}.")
    y_test = np.array([names.index(n) for n in test.class_names])[test.labels.numpy()]
    runs, predictions = [], {}
    for seed in range(seeds):
        arms = build_arms(x, y, seed, x_syn=xs, y_syn=ys, **({"x_aug": xs, "y_aug": ys} if len(ys) else {}))
        arms["augmented"] = weighted_output(x, y, xs, ys, weights=weights)
        runs.append(evaluate_arms(arms, test.images.numpy(), y_test, len(names), tail_classes(y, len(names)),
                                  classifiers, seed, predictions=predictions, cnn_steps=cnn_steps,
                                  cnn_width=cnn_width, augmentation=augmentation))
    all_runs = pd.concat(runs, ignore_index=True)
    summary = summarise(all_runs)
    summary = summary.merge(paired_differences(y_test, predictions, summary), on=["classifier", "arm"], how="left")
    gaps = {c: gap_closed(summary, c) for c in classifiers}
    result = {"test": test_spec, "seeds": seeds, "classifiers": list(classifiers), "cnn_steps": cnn_steps,
              "cnn_width": cnn_width, "cnn_augmentation": augmentation,
              "tail_classes": [names[c] for c in tail_classes(y, len(names))],
              "summary": summary.to_dict(orient="records"), "gap": gaps,
              "runs": all_runs.to_dict(orient="records")}
    write_json(run / "downstream.json", result)
    write_text(run / "downstream.csv", summary.to_csv(index=False))
    quality = pd.read_csv(run / "quality.csv") if (run / "quality.csv").exists() else None
    shown = summary[["classifier", "arm", "balanced_accuracy_mean", "balanced_accuracy_std", "macro_f1_mean",
                     "tail_recall_mean", "minus_random_oversampling", "minus_random_oversampling_low",
                     "minus_random_oversampling_high"]]
    write_report(run, meta, m, quality, [(f"Downstream evaluation on {test_spec} ({seeds} seed(s))", shown)])
    return summary, gaps
