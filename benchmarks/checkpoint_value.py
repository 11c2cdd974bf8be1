"""Which checkpoint is worth most downstream? One MNIST-LT draw, every checkpoint kept and judged.

Trains the product's GAN once on MNIST-LT (as benchmarks/mnist_lt.py: width 32, checkpoints every
250 steps, all kept), then for every --every-th checkpoint (and the one the pixel probe picked) prints:
the probe's score (what picks best.pt: fidelity x diversity, 64 images per class), CAS (logistic
regression trained on 200 generated images per class, balanced accuracy on the real train split),
and the downstream balanced accuracy of the augmented arm (real + generated images that the external
SmallCNN reads as their class with p >= 0.5, filling every class to 4000; logreg and SmallCNN on the
MNIST test split), then Spearman correlations between them.

    python benchmarks/checkpoint_value.py [--seed 0] [--steps 5000] [--every 500] [--work DIR] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from mnist_lt import PER_CLASS, split
from sklearn.metrics import balanced_accuracy_score
from synthetic_arms import read_as_their_class, with_generated

from augment.checkpoint import list_checkpoints
from augment.config import build_config
from augment.downstream import evaluate_arms, tail_classes
from augment.generate import generate, load_gan
from augment.layout import RunLayout
from augment.provenance import package_versions
from augment.score.external import fit_external
from augment.score.probe import PixelProbe, fit_pixel_logreg, pixels
from augment.stages import stage_load, stage_train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--every", type=int, default=500, help="judge checkpoints at multiples of this step")
    p.add_argument("--cnn-steps", type=int, default=400)
    p.add_argument("--work", type=Path, help="keep (and reuse) the training here")
    p.add_argument("--set", dest="sets", action="append", default=[])
    args = p.parse_args()
    seed = args.seed
    train, _, (x_test, y_test) = split(seed)
    counts = train.counts()
    sets = [f"seed={seed}", "model.width=32", f"train.steps={args.steps}", "train.checkpoint_every=250",
            "train.keep_checkpoints=100000", "score.cas=false", *args.sets]
    cfg = build_config(sets=sets, base={"balance": {"sampling_strategy": {str(c): counts[c] + PER_CLASS
                                                                         for c in range(10)}}})
    v = package_versions()
    print(f"# checkpoint value on MNIST-LT seed {seed}; device cpu ({platform.machine()}, {torch.get_num_threads()} "
          f"threads); torch {v['torch']}; settings {sets}; downstream cnn {args.cnn_steps} steps, width 16", flush=True)
    root = args.work or Path(tempfile.mkdtemp(prefix="checkpoint_value_"))
    layout = RunLayout.for_output(root / "out")
    if not (layout.train_dir / "result.json").exists():
        stage_load(train, cfg, layout)
        t = time.perf_counter()
        stage_train(cfg, layout)
        print(f"# trained in {time.perf_counter() - t:.0f} s", flush=True)
    run = json.loads((layout.train_dir / "result.json").read_text())["runs"]["all"]
    ext, report = fit_external(train, "cnn", seed=seed, steps=500, cache=root / "external.pt")
    print(f"# probe picked step {run['best_step']}; external SmallCNN held-out balanced accuracy "
          f"{report.holdout_balanced_accuracy:.4f}", flush=True)
    probe = PixelProbe(train, seed=seed)
    x, y = train.images.numpy(), train.labels.numpy()
    need = {c: max(PER_CLASS - counts[c], 0) for c in range(10)}
    rows = []
    for step, path in list_checkpoints(layout.train_dir / "all" / "checkpoints"):
        if step % args.every and step != run["best_step"]:
            continue
        gan = load_gan(path)
        few = generate(gan, {c: 64 for c in range(10)}, seed=seed + 7)
        judged = probe.judge(few.images, few.labels)
        more = generate(gan, {c: 200 for c in range(10)}, seed=seed + 8)
        cas = balanced_accuracy_score(y, fit_pixel_logreg(pixels(more.images), more.labels.numpy(), seed)
                                      .predict(pixels(train.images)))
        cand = generate(gan, {c: 2 * n for c, n in need.items()}, seed=seed)
        prob, lab = ext.predict(cand.images)[0], cand.labels.numpy()
        ok = read_as_their_class(prob, lab, 0.5)
        arm = with_generated(x, y, {c: cand.images.numpy()[(lab == c) & ok] for c in range(10)}, need)
        df = evaluate_arms({"augmented": arm}, x_test, y_test, 10, tail_classes(y, 10), ("logreg", "cnn"), seed,
                           cnn_steps=args.cnn_steps, cnn_width=16)
        row = {"step": step, "picked": step == run["best_step"], "probe": judged["score"], "cas_logreg": cas,
               "kept": len(arm.labels) - len(y),
               **{r["classifier"]: r["balanced_accuracy"] for _, r in df.iterrows()},
               **{f"{r['classifier']}_tail": r["tail_recall"] for _, r in df.iterrows()}}
        rows.append(row)
        print(json.dumps({k: round(w, 4) if isinstance(w, float) else w for k, w in row.items()}), flush=True)
    table = pd.DataFrame(rows)
    print(table.round(4).to_string(index=False))
    print("\nSpearman correlation with the downstream figures:")
    corr = table.drop(columns=["picked"]).corr(method="spearman")
    print(corr.loc[["step", "probe", "cas_logreg"], ["logreg", "cnn", "logreg_tail", "cnn_tail"]].round(2))


if __name__ == "__main__":
    main()
