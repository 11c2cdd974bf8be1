"""How much synthetic data a run adds: per-class quotas from balance.synthetic_share, per-row weights that
balance the classes in expectation, and, for 'auto', the share chosen on held-out real images.

The 'auto' probe holds out the external classifier's stratified split of the real images, trains the kind of
classifier users train on images (the SmallCNN recipe, `balance.probe_steps`; logistic regression on pixels
too, or alone, when `balance.probe_classifiers` asks) on the rest plus each candidate share of the kept
synthetic images, weighted to balance the classes, and keeps the largest share whose held-out balanced
accuracy beats none (weights only) by more than its paired bootstrap interval (probe seeds and held-out
images resampled, Bonferroni-widened for the four shares) while no probe classifier loses; otherwise none.
Shares are screened smallest first on the first probe seed, and one that loses to none with no gain in its
interval ends the probe (a larger share of the same images is not tried); only the shares that gained on the
screen, and none, are trained on the other probe seeds, and only they can win. A share that shows no gain on
one seed would need the other seeds to lift it past a Bonferroni-widened interval, so the screen costs the
test little and saves most of the probe where nothing helps (5 trainings of 15 at the defaults). Its cost,
at most `probe_cost_bound` trainings, is recorded and stated with the reason. A class with synthetic
images needs MIN_HELD_OUT held-out images before any gain counts: on digits-LT, where tail classes hold out
one image, a first version chose 2x on one seed of five and the output fell 0.025 below random oversampling
on the test split.

With 'auto' the GAN trains on the real images outside the held-out split (`gan_training_images`): a
generator that saw the held-out images reproduces them, and the probe would then favour synthetic data for
the wrong reason (on digits-LT it read 0.96 with synthetic images against 0.86 without, while the test split
said the opposite). The output still holds every real image.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from augment.data.labeled import LabeledImages
from augment.errors import ConfigError
from augment.paired import paired_bootstrap
from augment.score import cnn
from augment.score.external import holdout_split
from augment.score.probe import fit_pixel_logreg, pixels

CANDIDATE_SHARES = (0.0, 0.5, 1.0, 2.0, math.inf)
# The CNN probe's width: the downstream benchmarks' SmallCNN (width 16), 3.4x cheaper than the judge's 32
# (500 steps on Fashion-MNIST-LT, 2 CPU cores: 13 s against 45 s); the probe is model selection, not a
# second training run
PROBE_WIDTH = 16
MIN_HELD_OUT = 5  # held-out real images a class with synthetic images needs before a gain can be measured


def share_cap(share: str | float) -> float:
    """balance.synthetic_share as a multiple of the real count ('auto' and 'full': no cap)."""
    return math.inf if share in ("auto", "full") else float(share)


def share_label(share: float) -> str:
    return "full" if math.isinf(share) else f"{share:g}x"


def synthetic_quota(plan: dict[str, int], counts: dict[str, int], share: str | float) -> dict[str, int]:
    """Synthetic images each class may keep: its plan, capped at share x its real images."""
    cap = share_cap(share)
    return {n: k if math.isinf(cap) else min(k, math.floor(cap * counts[n])) for n, k in plan.items()}


def sample_weights(labels: np.ndarray, synthetic: np.ndarray, kept: np.ndarray, targets: np.ndarray,
                   synthetic_weight: float) -> np.ndarray:
    """Per row, the weight a loss or a WeightedRandomSampler should give it: the rows of class c weigh
    targets[c] in all (the size the plan asked for, so classes are balanced in expectation); a kept
    synthetic row weighs `synthetic_weight` x a real row of its class; rows not kept weigh 0."""
    weights = np.zeros(len(labels))
    for c in np.unique(labels):
        real = (labels == c) & ~synthetic
        syn = (labels == c) & synthetic & kept
        base = targets[c] / (real.sum() + synthetic_weight * syn.sum())
        weights[real] = base
        weights[syn] = synthetic_weight * base
    return weights


@dataclass
class AmountChoice:
    """The share 'auto' chose, why, and the curve it chose from (one row per candidate share)."""

    share: float
    reason: str
    holdout: dict[str, int]
    classifiers: list[str]
    curve: list[dict] = field(default_factory=list)
    cost: dict = field(default_factory=dict)  # {"trainings", "seconds", "shares_tried", "stopped_after"}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["share"] = share_label(self.share)
        for row in d["curve"]:
            row["share_value"] = None if math.isinf(row["share_value"]) else row["share_value"]
        return d


def probe_split(real: LabeledImages, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices of the probe: the external classifier's stratified split. A class without a
    held-out image cannot be judged, so 'auto' refuses it, naming the setting."""
    labels = real.labels.numpy()
    train, held = holdout_split(labels, seed)
    missing = [real.class_names[c] for c in range(real.num_classes) if not (labels[held] == c).any()]
    if missing:
        raise ConfigError(f"balance.synthetic_share = 'auto' holds out real images to choose the amount, but "
                          f"class(es) {missing} have too few images (fewer than 3) to hold one out. Set "
                          "balance.synthetic_share to a number (0 = no synthetic images) instead.")
    return train, held


def thin_classes(real: LabeledImages, with_synthetic, held: np.ndarray) -> list[str]:
    """Classes (indices in `with_synthetic`) whose held-out real images (`held`, the probe split's) are too
    few to measure a gain on."""
    labels = real.labels.numpy()
    return [real.class_names[c] for c in with_synthetic if (labels[held] == c).sum() < MIN_HELD_OUT]


def auto_forecast(real: LabeledImages, plan: dict[str, int], seed: int) -> str | None:
    """Before any work: why 'auto' will take no synthetic images whatever the GAN draws, or None."""
    needing = [real.class_names.index(n) for n, k in plan.items() if k > 0]
    thin = thin_classes(real, needing, probe_split(real, seed)[1])
    if not thin:
        return None
    return (f"balance.synthetic_share = 'auto' will add no synthetic images: class(es) {thin} hold out fewer than "
            f"{MIN_HELD_OUT} real images to measure a gain on, so the output will be the real images with "
            "balancing weights. Set balance.synthetic_share to a number (e.g. 1) to add synthetic images anyway.")


def gan_training_images(real: LabeledImages, share: str | float, seed: int) -> LabeledImages:
    """The real images the GAN trains on: all of them, or for 'auto' all but the probe's held-out split."""
    return real.subset(probe_split(real, seed)[0]) if share == "auto" else real


PROBE_NAMES = {"logreg": "logistic regression on pixels", "cnn": "the SmallCNN"}


def probe_list(probe_classifiers: str, probe_steps: int) -> list[str]:
    """balance.probe_classifiers as a list; probe_steps = 0 leaves the CNN out (logistic regression only)."""
    classifiers = [c for c in probe_classifiers.split(",") if c != "cnn" or probe_steps > 0]
    if not classifiers:
        raise ConfigError(f"balance.probe_classifiers = {probe_classifiers!r} with balance.probe_steps = 0 leaves "
                          "'auto' no probe; set probe_steps > 0 or probe_classifiers = 'logreg'.")
    return classifiers


def choose_share(real: LabeledImages, syn_images: torch.Tensor, syn_labels: np.ndarray, synthetic_weight: float,
                 seed: int, probe_steps: int, probe_seeds: int = 3, device: torch.device | str = "cpu",
                 probe_classifiers: str = "cnn") -> AmountChoice:
    """Pick the synthetic share on held-out real images. `syn_images`/`syn_labels`: the kept synthetic
    images in selection order (a share takes each class's first ones)."""
    labels = real.labels.numpy()
    train, held = probe_split(real, seed)
    holdout = {real.class_names[c]: int((labels[held] == c).sum()) for c in range(real.num_classes)}
    classifiers = probe_list(probe_classifiers, probe_steps)
    thin = thin_classes(real, np.unique(syn_labels), held)
    if thin:  # per-class recall on one or two images cannot tell a gain from luck: add nothing
        return AmountChoice(0.0, f"too few held-out real images to measure a gain: class(es) {thin} have fewer "
                                 f"than {MIN_HELD_OUT}, so the output takes no synthetic images (weights only)",
                            holdout, classifiers, [])
    counts = np.bincount(labels[train], minlength=real.num_classes)
    seeds = [seed + s for s in range(probe_seeds)]
    started, trainings = time.perf_counter(), 0
    cnns = [c for c in classifiers if c != "logreg"]  # logistic regression does not depend on the seed

    def probe(take: np.ndarray, run_seeds: list[int], which: list[str]) -> np.ndarray:
        nonlocal trainings
        trainings += sum(1 if c == "logreg" else len(run_seeds) for c in which)
        return _probe(real, train, held, syn_images[torch.from_numpy(take)], syn_labels[take], synthetic_weight,
                      which, run_seeds, probe_steps, device)

    # screen: every share on the first probe seed; a share that does not gain on it cannot win below
    takes, screened, rows, stopped = [], [], [], None
    for share in CANDIDATE_SHARES:
        take = _first_per_class(syn_labels, counts, share)
        same = bool(takes) and np.array_equal(take, takes[-1])  # the same set as the smaller share: no new training
        screened.append(screened[-1] if same else probe(take, seeds[:1], classifiers))
        takes.append(take)
        rows.append(_curve_row(share, len(take), screened[-1], screened[0], labels[held], seed,
                               len(CANDIDATE_SHARES) - 1))
        if rows[-1]["minus_none"] < 0 and rows[-1]["high"] <= 0:  # lost, and no resample saw a gain: a larger
            stopped = share  # share of the same images is not tried (the bound on the probe's cost)
            break
    # confirm: the shares that gained on the screen, and none, their reference, on every probe seed: a confirmed
    # share's result is what it would have been without the screen (the test for a win is unchanged)
    gained = [i for i in range(1, len(rows)) if rows[i]["minus_none"] > 0] if len(seeds) > 1 else []
    full: dict[int, np.ndarray] = {}
    for i in [0, *gained] if gained else []:
        j = next(k for k in range(i + 1) if np.array_equal(takes[k], takes[i]))  # trained already as share j
        if j < i:
            full[i] = full[j]
        else:
            more = probe(takes[i], seeds[1:], cnns) if cnns else None
            full[i] = _more_seeds(screened[i], more, classifiers, len(seeds))
    curve = []
    for i, row in enumerate(rows):
        if i in full:
            row = _curve_row(row["share_value"], row["n_synthetic"], full[i], full[0], labels[held], seed,
                             len(CANDIDATE_SHARES) - 1)
        curve.append({**row, "probe_seeds": len(full.get(i, screened[i])),
                      "screened_out": len(seeds) > 1 and i > 0 and i not in gained})
    cost = {"trainings": trainings, "seconds": round(time.perf_counter() - started, 1),
            "shares_tried": len(curve), "stopped_after": None if stopped is None else share_label(stopped),
            "screened_out": [r["share"] for r in curve if r["screened_out"]]}
    # a share wins when the classifiers together beat none beyond the interval and neither of them loses
    none_each = curve[0]["per_classifier"]
    wins = [r["share_value"] for r in curve[1:] if not r["screened_out"]
            and r["low"] > 0 and all(a >= b for a, b in zip(r["per_classifier"], none_each))]
    chosen = max(wins, default=0.0)
    test = (f"beyond its paired bootstrap interval (Bonferroni-widened for 4 shares) on {len(held)} held-out real "
            f"images, judged by {' and '.join(PROBE_NAMES[c] for c in classifiers)}")
    reason = (f"no share beat none (the real images with weights) {test} without a probe classifier losing"
              if chosen == 0 else f"{share_label(chosen)} was the largest share that beat none {test}")
    if stopped is not None:
        reason += (f"; {share_label(stopped)} lost to none with no gain inside its interval, so larger shares "
                   "were not tried")
    if cost["screened_out"]:
        reason += (f"; {', '.join(cost['screened_out'])} gained nothing on the first probe seed, so "
                   "the other seeds were not trained for them")
    reason += f" (probe: {trainings} trainings, {cost['seconds']:.0f} s)"
    return AmountChoice(chosen, reason, holdout, classifiers, curve, cost)


def probe_cost_bound(probe_classifiers: str, probe_seeds: int, probe_steps: int) -> int:
    """The most classifier trainings 'auto' makes: per candidate share, one logistic regression and
    `probe_seeds` SmallCNNs of `probe_steps` steps (fewer when a share loses, repeats the smaller one or gains
    nothing on the first probe seed)."""
    per_share = sum(1 if c == "logreg" else probe_seeds for c in probe_list(probe_classifiers, probe_steps))
    return per_share * len(CANDIDATE_SHARES)


def _more_seeds(first: np.ndarray, more: np.ndarray | None, classifiers: list[str], n: int) -> np.ndarray:
    """The screen's (1, classifiers, held) result and the CNNs' other seeds (n - 1, CNNs, held) as one
    (n, classifiers, held) result; logistic regression does not depend on the seed: its row repeats."""
    cols, k = [], 0
    for c, name in enumerate(classifiers):
        if name == "logreg":
            cols.append(np.repeat(first[:1, c], n, axis=0))
        else:
            cols.append(np.concatenate([first[:1, c], more[:, k]]))
            k += 1
    return np.stack(cols, axis=1)


def _first_per_class(syn_labels: np.ndarray, counts: np.ndarray, share: float) -> np.ndarray:
    """Indices of each class's first min(kept, share x real count) synthetic images."""
    out = []
    for c in np.unique(syn_labels):
        idx = np.flatnonzero(syn_labels == c)
        n = len(idx) if math.isinf(share) else min(len(idx), math.floor(share * counts[c]))
        out.append(idx[:n])
    return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)


def _probe(real: LabeledImages, train: np.ndarray, held: np.ndarray, syn_images: torch.Tensor,
           syn_labels: np.ndarray, synthetic_weight: float, classifiers: list[str], seeds: list[int], steps: int,
           device) -> np.ndarray:
    """(probe seeds, classifiers, held-out) whether each probe classifier, trained with each seed, read each
    held-out image right. Logistic regression (lbfgs) does not depend on the seed: it is fitted once."""
    images = torch.cat([real.images[torch.from_numpy(train)], syn_images])
    labels = np.concatenate([real.labels.numpy()[train], syn_labels]).astype(np.int64)
    synthetic = np.arange(len(labels)) >= len(train)
    targets = np.full(real.num_classes, np.bincount(labels[~synthetic], minlength=real.num_classes).max())
    w = sample_weights(labels, synthetic, np.ones(len(labels), bool), targets, synthetic_weight)
    x_held, y_held = real.images[torch.from_numpy(held)], real.labels.numpy()[held]
    per_classifier = []
    for name in classifiers:
        if name == "logreg":
            clf = fit_pixel_logreg(pixels(images), labels, seeds[0], balanced=False, sample_weight=w * len(w) / w.sum())
            per_classifier.append(np.stack([clf.predict(pixels(x_held)) == y_held] * len(seeds)))
        else:
            per_classifier.append(np.stack([
                cnn.predict(cnn.train_cnn(images, torch.from_numpy(labels), real.num_classes, steps=steps, seed=s,
                                          device=device, sample_weight=w, width=PROBE_WIDTH),
                            x_held, device)[0].argmax(1) == y_held
                for s in seeds]))
    return np.stack(per_classifier, axis=1)


def _curve_row(share: float, n_synthetic: int, correct: np.ndarray, none: np.ndarray, y_held: np.ndarray,
               seed: int, comparisons: int) -> dict:
    """Held-out balanced accuracy at this share (mean over probe seeds and classifiers) and its difference
    from none with the paired bootstrap interval (classifiers averaged per image; probe seeds and, within
    each class, images resampled), Bonferroni-widened for the `comparisons` shares tried against none."""
    mean_correct, mean_none = correct.mean(axis=1), none.mean(axis=1)  # (seeds, held-out)
    by_class = [np.flatnonzero(y_held == c) for c in np.unique(y_held)]
    accuracy = float(np.mean([mean_correct[:, idx].mean() for idx in by_class]))
    per_classifier = [float(np.mean([correct[:, k][:, idx].mean() for idx in by_class]))
                      for k in range(correct.shape[1])]
    d = paired_bootstrap(mean_correct, mean_none, y_held, seed=seed, level=1 - 0.05 / comparisons)
    return {"share": share_label(share), "share_value": share, "n_synthetic": int(n_synthetic),
            "balanced_accuracy": accuracy, "per_classifier": per_classifier,
            "minus_none": d.mean, "low": d.low, "high": d.high}
