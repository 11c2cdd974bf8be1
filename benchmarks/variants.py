"""Each conditional GAN variant on MNIST-LT for the same wall-clock budget.

MNIST-LT (docs/benchmarks.md): the train split of ../shared/datasets/mnist.npz subsampled to 4000, 2000, 1000,
750, 500, 350, 200, 100, 60, 40 images of classes 0..9 (one draw per seed); test: the full MNIST test
split. Every variant's training stage gets --budget seconds (train.max_seconds, which includes the
auxiliary classifier that cgan and gan-cls train beside the GAN), then the pipeline's own stages
generate candidates for a plan that balances every class to 4000, score them and select. One
external classifier per seed (the SmallCNN recipe, trained on that draw's train split) judges all variants.
Printed per variant: steps done in the budget, the external classifier's accuracy on all generated
candidates per class, kept images, and the downstream balanced accuracy of the augmented arm
(logistic regression on pixels; --cnn adds the SmallCNN), beside the imbalanced and
random-oversampling arms.

    python benchmarks/variants.py [--budget 480] [--seeds 3] [--variants acgan,cgan,...] [--cnn] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from shared_data import MNIST

from augment.config import build_config
from augment.data import LabeledImages
from augment.data.longtail import MNIST_LT_COUNTS, subsample_per_class
from augment.downstream import build_arms, evaluate_arms, tail_classes
from augment.generate import Synthetic
from augment.layout import RunLayout
from augment.provenance import package_versions
from augment.score.external import fit_external
from augment.stages import stage_generate, stage_load, stage_score, stage_train
from augment.train import TrainingDiverged

VARIANTS = {
    "acgan": ["model.variant=acgan"],
    "acgan+sn": ["model.variant=acgan", "model.spectral_norm=true"],
    "acgan+concat": ["model.variant=acgan", "model.conditioning=concat"],
    "acgan+concat+sn": ["model.variant=acgan", "model.conditioning=concat", "model.spectral_norm=true"],
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


def run_seed(seed: int, args, variants: list[str], classifiers: tuple[str, ...], tmp: Path) -> list[dict]:
    """One MNIST-LT draw: its own judge, baselines and a run of every variant with this seed."""
    train_set, test = mnist_lt(seed)
    t0 = time.perf_counter()
    ext, report = fit_external(train_set, "cnn", seed=seed, steps=args.external_steps, cache=tmp / "external.pt")
    print(f"# seed {seed}: external classifier SmallCNN, {args.external_steps} steps "
          f"({time.perf_counter() - t0:.0f} s); "
          f"held-out real balanced accuracy {report.holdout_balanced_accuracy:.4f}", flush=True)
    x, y = train_set.images.numpy(), train_set.labels.numpy()
    tail = tail_classes(y, 10)
    base = build_arms(x, y, seed)
    base = evaluate_arms({k: base[k] for k in ("imbalanced", "random oversampling")}, test.images.numpy(),
                         test.labels.numpy(), 10, tail, classifiers, seed)
    print(f"# seed {seed} baselines (balanced accuracy): " + ", ".join(
        f"{r['classifier']}:{r['arm']} {r['balanced_accuracy']:.4f}" for _, r in base.iterrows()), flush=True)
    rows = []
    for name in variants:
        cfg = build_config(sets=[*BASE, *VARIANTS[name], f"train.max_seconds={args.budget}", f"seed={seed}",
                                 *args.sets])
        layout = RunLayout.for_output(tmp / f"{name}-{seed}")
        stage_load(train_set, cfg, layout)
        shutil.copy(tmp / "external.pt", layout.work / "external.pt")
        t = time.perf_counter()
        try:
            training = stage_train(cfg, layout)
        except TrainingDiverged as e:  # a variant that cannot be trained is a result, not the end of the run
            print(f"seed {seed} {name}: diverged after {time.perf_counter() - t:.0f} s: {e}", flush=True)
            rows.append({"seed": seed, "variant": name, "diverged": 1})
            shutil.rmtree(layout.work, ignore_errors=True)
            continue
        seconds = time.perf_counter() - t
        stage_generate(cfg, layout, 0)
        stage_score(cfg, layout)
        cand = Synthetic.load(layout.candidates)
        scores = pd.read_parquet(layout.scores)
        labels = cand.labels.numpy()
        per_class = {c: float((scores["ext_pred"].to_numpy()[labels == c] == c).mean()) for c in np.unique(labels)}
        kept = torch.from_numpy(scores["kept"].to_numpy(bool).copy())
        aug = {"augmented": build_arms(x, y, seed, x_aug=cand.images[kept].numpy(), y_aug=labels[kept.numpy()])
               .get("augmented")}
        down = evaluate_arms({k: a for k, a in aug.items() if a is not None}, test.images.numpy(),
                             test.labels.numpy(), 10, tail, classifiers, seed)
        run = next(iter(training["runs"].values()))
        row = {"seed": seed, "variant": name, "diverged": 0, "steps": run["step"], "train_s": seconds,
               "aux_s": training.get("aux_classifier_seconds", 0.0), "best_step": run["best_step"],
               "ext_acc_mean": np.mean(list(per_class.values())), "kept": int(kept.sum()),
               **{f"ext_acc_{c}": per_class[c] for c in per_class}}
        for _, r in base.iterrows():
            row[f"{r['classifier']}:{r['arm']}"] = r["balanced_accuracy"]
        for _, r in down.iterrows():
            row[f"{r['classifier']}:{r['arm']}"] = r["balanced_accuracy"]
        rows.append(row)
        print(f"seed {seed} {name}: {row['steps']} steps, training stage {seconds:.0f} s (aux classifier "
              f"{row['aux_s']:.0f} s; best step {row['best_step']}); external accuracy on generated, per class "
              f"{[round(per_class[c], 3) for c in sorted(per_class)]}, mean {row['ext_acc_mean']:.3f}; kept "
              f"{row['kept']}; downstream balanced accuracy " +
              ", ".join(f"{k} {v:.4f}" for k, v in row.items() if ":" in k and k.endswith("augmented")), flush=True)
        shutil.rmtree(layout.work, ignore_errors=True)
    (tmp / "external.pt").unlink()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=480)
    p.add_argument("--variants", default="acgan,cgan,gan-cls", help=f"any of {', '.join(VARIANTS)}")
    p.add_argument("--seeds", type=int, default=3, help="MNIST-LT draws 0..N-1; each has its own judge")
    p.add_argument("--cnn", action="store_true")
    p.add_argument("--external-steps", type=int, default=1000)
    p.add_argument("--set", dest="sets", action="append", default=[])
    args = p.parse_args()
    v = package_versions()
    variants = [n.strip() for n in args.variants.split(",")]
    classifiers = ("logreg", "cnn") if args.cnn else ("logreg",)
    print(f"# variants on MNIST-LT (seeds 0..{args.seeds - 1}, tail 40); training-stage budget {args.budget:.0f} s "
          f"each (train.max_seconds, auxiliary classifier included); device "
          f"{'cuda' if torch.cuda.is_available() else 'cpu'} ({platform.machine()}, {torch.get_num_threads()} "
          f"threads); torch {v['torch']}; base settings {BASE + args.sets}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            rows += run_seed(seed, args, variants, classifiers, Path(tmp))
    table = pd.DataFrame(rows)
    diverged = table.groupby("variant", sort=False)["diverged"].sum()
    done = table[table["diverged"] == 0]  # means over the seeds that trained
    metrics = ["steps", "train_s", "ext_acc_mean", "kept"] + [c for c in table.columns if ":" in c]
    mean, std = done.groupby("variant", sort=False)[metrics].mean(), done.groupby("variant", sort=False)[metrics].std()
    print(f"\n# mean ± std over the seeds that trained (of {args.seeds})")
    print(" | ".join(["variant", "diverged", *metrics]))
    for name in diverged.index:
        if name not in mean.index:
            print(f"{name} | {diverged[name]}/{args.seeds} |" + " - |" * len(metrics))
            continue
        print(" | ".join([name, f"{diverged[name]}/{args.seeds}",
                          *(f"{mean.at[name, m]:.4f} ± {std.at[name, m]:.4f}" if m not in ("steps", "train_s", "kept")
                            else f"{mean.at[name, m]:.0f}" for m in metrics)]))


if __name__ == "__main__":
    main()
