"""Each conditional GAN variant on MNIST-LT for the same wall-clock budget.

MNIST-LT (DESIGN.md): the train split of ../shared/datasets/mnist.npz subsampled to 4000, 2000, 1000,
750, 500, 350, 200, 100, 60, 40 images of classes 0..9 (seed 0); test: the full MNIST test split.
Every variant trains for --budget seconds (train.max_seconds), then the pipeline's own stages
generate candidates for a plan that balances every class to 4000, score them and select. One
external classifier (the SmallCNN recipe, trained once on the LT train split) judges all variants.
Printed per variant: steps done in the budget, the external classifier's accuracy on all generated
candidates per class, kept images, and the downstream balanced accuracy of the augmented arm
(logistic regression on pixels; --cnn adds the SmallCNN), beside the imbalanced and
random-oversampling arms.

    python benchmarks/variants.py [--budget 480] [--variants acgan,cgan,...] [--cnn] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augment.config import build_config  # noqa: E402
from augment.data import LabeledImages  # noqa: E402
from augment.data.longtail import MNIST_LT_COUNTS, subsample_per_class  # noqa: E402
from augment.evaluate import build_arms, evaluate_arms, tail_classes  # noqa: E402
from augment.generate import Synthetic  # noqa: E402
from augment.pipeline import (RunLayout, stage_generate, stage_load, stage_score, stage_train)  # noqa: E402
from augment.provenance import package_versions  # noqa: E402
from augment.score.external import fit_external  # noqa: E402

MNIST = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist.npz"
VARIANTS = {
    "acgan": ["model.variant=acgan"],
    "acgan+diffaug": ["model.variant=acgan", 'train.diffaugment="translation"'],
    "cgan": ["model.variant=cgan"],
    "gan-cls": ["model.variant=gan-cls", "model.loss=lsgan"],
}
BASE = ["model.width=32", "train.steps=1000000", "train.checkpoint_every=250", "train.log_every=50",
        "balance.sampling_strategy=auto", "select.max_rounds=2"]


def mnist_lt(seed: int = 0) -> tuple[LabeledImages, LabeledImages]:
    d = np.load(MNIST)
    keep = subsample_per_class(d["y_train"], MNIST_LT_COUNTS, seed)
    names = [str(i) for i in range(10)]
    train = LabeledImages(torch.from_numpy(d["x_train"][keep])[:, None].contiguous(),
                          torch.from_numpy(d["y_train"][keep].astype(np.int64)), names,
                          [f"train-{i:06d}" for i in keep], f"mnist-lt(seed={seed})")
    test = LabeledImages(torch.from_numpy(d["x_test"])[:, None].contiguous(),
                         torch.from_numpy(d["y_test"].astype(np.int64)), names,
                         [f"test-{i:06d}" for i in range(len(d["y_test"]))], "mnist:test")
    return train, test


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=480)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--cnn", action="store_true")
    p.add_argument("--external-steps", type=int, default=1000)
    p.add_argument("--set", dest="sets", action="append", default=[])
    args = p.parse_args()
    train_set, test = mnist_lt(0)
    v = package_versions()
    print(f"# variants on MNIST-LT (seed 0, {len(train_set)} images, tail 40); budget {args.budget:.0f} s each; "
          f"device {'cuda' if torch.cuda.is_available() else 'cpu'} ({platform.machine()}, "
          f"{torch.get_num_threads()} threads); torch {v['torch']}; base settings {BASE + args.sets}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        ext, report = fit_external(train_set, "cnn", seed=0, steps=args.external_steps, cache=tmp / "external.pt")
        print(f"# external classifier: SmallCNN, {args.external_steps} steps ({time.perf_counter() - t0:.0f} s); held-out real "
              f"balanced accuracy {report.holdout_balanced_accuracy:.4f}", flush=True)
        x, y = train_set.images.numpy(), train_set.labels.numpy()
        tail = tail_classes(y, 10)
        classifiers = ("logreg", "cnn") if args.cnn else ("logreg",)
        base = build_arms(x, y, 0)
        base = evaluate_arms({k: base[k] for k in ("imbalanced", "random oversampling")}, test.images.numpy(),
                             test.labels.numpy(), 10, tail, classifiers, 0)
        print("# baselines (balanced accuracy): " + ", ".join(
            f"{r['classifier']}:{r['arm']} {r['balanced_accuracy']:.4f}" for _, r in base.iterrows()), flush=True)
        rows = []
        for name in args.variants.split(","):
            cfg = build_config(sets=[*BASE, *VARIANTS[name], f"train.max_seconds={args.budget}", *args.sets])
            layout = RunLayout.for_output(tmp / name)
            stage_load(train_set, cfg, layout)
            shutil.copy(tmp / "external.pt", layout.work / "external.pt")
            t = time.perf_counter()
            training = stage_train(cfg, layout)
            seconds = time.perf_counter() - t
            stage_generate(cfg, layout, 0)
            stage_score(cfg, layout)
            cand = Synthetic.load(layout.candidates)
            scores = pd.read_parquet(layout.scores)
            labels = cand.labels.numpy()
            per_class = {c: float((scores["ext_pred"].to_numpy()[labels == c] == c).mean()) for c in np.unique(labels)}
            kept = torch.from_numpy(scores["kept"].to_numpy(bool).copy())
            aug = {"augmented": build_arms(x, y, 0, x_aug=cand.images[kept].numpy(), y_aug=labels[kept.numpy()])
                   .get("augmented")}
            down = evaluate_arms({k: a for k, a in aug.items() if a is not None}, test.images.numpy(),
                                 test.labels.numpy(), 10, tail, classifiers, 0)
            run = next(iter(training["runs"].values()))
            row = {"variant": name, "steps": run["step"], "train_s": round(seconds), "best_step": run["best_step"],
                   "ext_acc_mean": np.mean(list(per_class.values())), "kept": int(kept.sum()),
                   **{f"ext_acc_{c}": per_class[c] for c in per_class}}
            for _, r in down.iterrows():
                row[f"{r['classifier']}:{r['arm']}"] = r["balanced_accuracy"]
            rows.append(row)
            print(f"{name}: {row['steps']} steps in {seconds:.0f} s (best step {row['best_step']}); external accuracy "
                  f"on generated, per class {[round(per_class[c], 3) for c in sorted(per_class)]}, mean "
                  f"{row['ext_acc_mean']:.3f}; kept {row['kept']}; downstream balanced accuracy " +
                  ", ".join(f"{k} {v:.4f}" for k, v in row.items() if ":" in k), flush=True)
            shutil.rmtree(layout.work, ignore_errors=True)
    table = pd.DataFrame(rows)
    cols = ["variant", "steps", "ext_acc_mean", "kept"] + [c for c in table.columns if ":" in c]
    print("\n" + table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
