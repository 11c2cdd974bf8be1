"""Which property of the synthetic images tracks what a classifier gains from them (#40's map)? Every source
tried on Fashion-MNIST-LT, at one amount and weight, measured twice: downstream (the SmallCNN trained on real
+ the source, as augment's output is used) and in the feature space of a judge trained on the full, balanced
Fashion-MNIST train split (an oracle the sources never see).

Per seed: fashion_lt.py's long-tailed split and test split; for every class but the largest, `--share` x its
real count of images (a synthetic row weighing `--synthetic-weight` of a real one, classes balanced at the
largest class) from each source:
- noise: Gaussian images with the data's mean and std (the control);
- remix, cutmix: a head image's context with a tail image's content (augment.mixing);
- GAN samples: the default generator's own samples, no selection (the generator of the band run below);
- band: augment's output with the band settings, run through the CLI (the band source of docs/benchmarks.md);
- transfer: G(E(x_head), y_tail) with `model.conditioning = concat` and the latent-regression encoder;
- coverage: the band run again with `select.rank = coverage` (each next kept image the candidate farthest
  from the class's real images and those kept before it, in the pipeline's judge's features).
Properties per class with synthetic images (means over those classes, and over the three smallest):
read as class (the judge's argmax is the label), distance ratio (median distance from a synthetic image to
the nearest real training image of its class, over that of the class's unseen test images: 1 is as far
from the training tail as new real images are; below 1, nearer copies), added coverage (of the class's test
images, the share newly inside a synthetic image's reach: a test image is reached when an image of the set
lies within its distance to its 5th nearest test neighbour, Naeem et al. 2020's coverage; real training
images + the source, less real training images alone), spread (mean pairwise distance over the test
images'). Then the Spearman correlation, across sources, of each property with the downstream difference
from random oversampling.

    python benchmarks/source_properties.py [--seeds 3] [--first-seed 0] [--sources band,noise] [--save rows.csv]
    python benchmarks/source_properties.py --from-csv rows.csv more.csv   # merged: each seed's arm once
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from fashion_lt import GAN, long_tailed, run_cli, test_split, write_folder
from inversion_gate import training_split
from mnist_lt import evaluate_seed, load_predictions, print_paired, read_output, report
from scipy.stats import spearmanr
from shared_data import fashion_mnist
from transfer_lt import quotas, transferred

from augment.config import build_config
from augment.downstream import Arm, balancing_weights, random_oversample, tail_classes
from augment.generate import generate, load_gan
from augment.inversion import train_encoder
from augment.mixing import mix
from augment.provenance import package_versions
from augment.score import cnn
from augment.score.metrics import nearest_distance, pairwise_distances
from augment.train import train

BAND = ["select.copy_percentile=50", "select.manifold_k=5", "select.oversample=4", "balance.synthetic_share=0.5",
        "balance.synthetic_weight=0.5"]
PROPERTIES = ("read as class", "distance ratio", "added coverage", "spread")
SOURCES = ("noise", "remix", "cutmix", "band", "GAN samples", "transfer", "coverage")


def oracle(steps: int, seed: int) -> cnn.SmallCNN:
    """The judge whose features the properties are measured in: the SmallCNN recipe on all 60,000 train images."""
    x, y = fashion_mnist("train")
    return cnn.train_cnn(torch.from_numpy(x[:, None]), torch.from_numpy(y), 10, steps=steps, seed=seed)


def properties(judge, f_real: np.ndarray, y_real: np.ndarray, f_test: np.ndarray, y_test: np.ndarray,
               x_syn: np.ndarray, y_syn: np.ndarray, k: int = 5) -> dict[int, dict[str, float]]:
    """Per class of y_syn: the four properties of the module docstring, in the judge's feature space
    (f_real, f_test: the judge's features of the real training and test images)."""
    p_syn, f_syn = cnn.predict(judge, torch.from_numpy(x_syn))
    out = {}
    for c in np.unique(y_syn):
        real, test, syn = f_real[y_real == c], f_test[y_test == c], f_syn[y_syn == c]
        radius = np.sort(pairwise_distances(test, test), axis=1)[:, k]  # column 0 is the image itself
        by_real = nearest_distance(test, real) <= radius
        by_syn = nearest_distance(test, syn) <= radius
        spread = pairwise_distances(syn[:500], syn[:500]).mean() / pairwise_distances(test[:500], test[:500]).mean()
        out[int(c)] = {"read as class": float((p_syn[y_syn == c].argmax(1) == c).mean()),
                       "distance ratio": float(np.median(nearest_distance(syn, real))
                                               / np.median(nearest_distance(test, real))),
                       "added coverage": float((by_real | by_syn).mean() - by_real.mean()),
                       "spread": float(spread)}
    return out


def sources(seed: int, x: np.ndarray, y: np.ndarray, workdir: Path, encoder_steps: int, share: float,
            sets: list[str], wanted: tuple[str, ...] = SOURCES) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """Each wanted source's images and labels for this seed (module docstring), and a line of what it cost."""
    quota = quotas(np.bincount(y), share)
    made = {kind: (m.images, m.labels) for kind in ("noise", "remix", "cutmix") if kind in wanted
            for m in [mix(kind, x, y, quota, seed)]}
    x_tr, y_tr, lt = long_tailed("fashion", seed, 28)
    folder, notes = write_folder(workdir / "data", x_tr, y_tr, lt), []
    for name, extra in (("band", []), ("coverage", ["select.rank=coverage"])):
        if name not in wanted and not (name == "band" and "GAN samples" in wanted):
            continue
        out = workdir / name
        seconds = run_cli(folder, out, seed, [*GAN, *BAND, *extra, *sets])
        kept = read_output(out)["kept"]
        notes.append(f"{name} run {seconds:.0f} s ({len(kept[1])} kept)")
        if name in wanted:
            made[name] = kept[0], kept[1]
        if name == "band" and "GAN samples" in wanted:
            gan = load_gan(out / json.loads((out / "dataset.json").read_text())["checkpoint"]["path"])
            own = generate(gan, quota, seed=seed)
            made["GAN samples"] = own.images.numpy(), own.labels.numpy().astype(np.int64)
    if "transfer" in wanted:
        t0 = time.perf_counter()
        data = training_split("fashion", seed)
        concat = load_gan(train(data, build_config(sets=[f"seed={seed}", "model.conditioning=concat", *GAN, *sets]),
                                workdir / "concat").best_checkpoint)
        inv = train_encoder(concat, data.num_classes, steps=encoder_steps, seed=seed, pixel_weight=0.0)
        made["transfer"] = transferred(concat, inv, data.images, data.labels.numpy(), quota, seed)
        notes.append(f"concat GAN + encoder {time.perf_counter() - t0:.0f} s")
    return made, ", ".join([*notes, f"{sum(quota.values())} images per source"])


def correlations(props: pd.DataFrame, runs: pd.DataFrame) -> None:
    """Spearman's rho across sources between each property (all classes with synthetic images) and the
    source's mean balanced accuracy less random oversampling's."""
    acc = runs.groupby("arm")["balanced_accuracy"].mean()
    gain = {s: acc[f"{s}, weighted"] - acc["random oversampling"] for s in props["source"].unique()
            if f"{s}, weighted" in acc}
    means = props.groupby("source")[list(PROPERTIES)].mean()
    print("\nsource, downstream − random oversampling, and its properties (classes with synthetic images; "
          "mean over seeds):")
    for s, g in sorted(gain.items(), key=lambda kv: -kv[1]):
        print(f"  {s:12s} {g:+.4f}  " + "  ".join(f"{p} {means.loc[s, p]:.3f}" for p in PROPERTIES))
    names = list(gain)
    for p in PROPERTIES:
        rho = spearmanr([means.loc[s, p] for s in names], [gain[s] for s in names]).statistic
        print(f"Spearman rho ({p}, downstream gain) over {len(names)} sources: {rho:+.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--share", type=float, default=0.5)
    p.add_argument("--synthetic-weight", type=float, default=0.5)
    p.add_argument("--judge-steps", type=int, default=1000)
    p.add_argument("--encoder-steps", type=int, default=1000)
    p.add_argument("--cnn-steps", type=int, default=1000)
    p.add_argument("--set", dest="sets", action="append", default=[], help="GAN settings of both generators")
    p.add_argument("--sources", default=",".join(SOURCES), help=f"comma-separated, of {', '.join(SOURCES)}")
    p.add_argument("--save", type=Path, help="write rows (downstream) and <save>.properties.csv here")
    p.add_argument("--from-csv", type=Path, nargs="+", help="report rows saved by earlier runs, merged")
    args = p.parse_args()
    if args.from_csv:
        return report_merged(args.from_csv)
    wanted = tuple(w.strip() for w in args.sources.split(",") if w.strip())
    if unknown := set(wanted) - set(SOURCES):
        p.error(f"--sources: unknown {sorted(unknown)}; choose from {', '.join(SOURCES)}")
    x_test, y_test = test_split("fashion", 28)
    v = package_versions()
    print(f"# source properties, Fashion-MNIST-LT: {args.seeds} seed(s) from {args.first_seed}; share {args.share}, "
          f"synthetic weight {args.synthetic_weight}; GAN settings {args.sets or 'defaults'}; "
          f"judge SmallCNN width 32, {args.judge_steps} steps on the full train split; downstream SmallCNN width 16, "
          f"{args.cnn_steps} steps; cpu ({platform.machine()}, {torch.get_num_threads()} threads); "
          f"torch {v['torch']}, augment {v['augment']}", flush=True)
    runs, predictions, props = [], {}, []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        judge = oracle(args.judge_steps, seed)
        x_tr, y_tr, lt = long_tailed("fashion", seed, 28)
        x, y = x_tr[lt][:, None], y_tr[lt]
        with tempfile.TemporaryDirectory() as tmp:
            made, note = sources(seed, x, y, Path(tmp), args.encoder_steps, args.share, args.sets, wanted)
        arms = {"random oversampling": Arm(*random_oversample(x, y, seed))}
        f_real, f_test = (cnn.predict(judge, torch.from_numpy(a))[1] for a in (x, x_test))
        for name, (xs, ys) in made.items():
            labels = np.concatenate([y, ys]).astype(np.int64)
            arms[f"{name}, weighted"] = Arm(np.concatenate([x, xs]), labels,
                                            weights=balancing_weights(labels, len(y), args.synthetic_weight))
            for c, row in properties(judge, f_real, y, f_test, y_test, xs, ys).items():
                props.append({"seed": seed, "source": name, "class": c, "tail": c in tail_classes(y, 10), **row})
        evaluate_seed(arms, x_test, y_test, 10, tail_classes(y, 10), ("cnn",), seed, runs, predictions, args.save,
                      f"{note}; ", cnn_steps=args.cnn_steps, cnn_width=16)
        table = pd.DataFrame(props)
        if args.save:
            table.to_csv(args.save.with_suffix(".properties.csv"), index=False)
        print(table[table["seed"] == seed].groupby("source")[list(PROPERTIES)].mean().round(3).to_string(), flush=True)
    summarise_map(pd.concat(runs, ignore_index=True), predictions, y_test, pd.DataFrame(props))


def summarise_map(runs: pd.DataFrame, predictions: dict, y_test: np.ndarray, props: pd.DataFrame) -> None:
    """The downstream table, paired intervals, the smallest classes' properties and the correlations."""
    report(runs, ("cnn",))
    print_paired(runs, predictions, y_test)
    print("\nproperties, the three smallest classes:")
    print(props[props["tail"]].groupby("source")[list(PROPERTIES)].mean().round(3).to_string())
    correlations(props, runs)


def report_merged(csvs: list[Path]) -> None:
    """--from-csv: rows, predictions and properties of several runs; where two runs hold the same seed's
    arm (random oversampling, run again beside a new source), the first file's is used and both printed."""
    rows = pd.concat([pd.read_csv(f) for f in csvs], ignore_index=True)
    rows["per_class_recall"] = rows["per_class_recall"].map(json.loads)
    twice = rows[rows.duplicated(["classifier", "arm", "seed"], keep=False)]
    for (arm, seed), g in twice.groupby(["arm", "seed"]):
        print(f"seed {seed}, {arm}: in more than one file, " + ", ".join(f"{v:.4f}" for v in g["balanced_accuracy"])
              + "; the first is used")
    rows = rows.drop_duplicates(["classifier", "arm", "seed"], keep="first").reset_index(drop=True)
    props = pd.concat([pd.read_csv(f.with_suffix(".properties.csv")) for f in csvs], ignore_index=True)
    props = props.drop_duplicates(["seed", "source", "class"], keep="first")
    predictions, y_test = load_predictions(list(reversed(csvs)))  # read last to first: the first file wins
    print(f"# source properties rows from {', '.join(map(str, csvs))}: seeds {sorted(rows['seed'].unique())}")
    summarise_map(rows, predictions, y_test, props)


if __name__ == "__main__":
    main()
