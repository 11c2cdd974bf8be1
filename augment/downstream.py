"""Downstream proof: does a classifier trained on the augmented data beat the classical fixes?

Arms (docs/benchmarks.md): the imbalanced real data; random oversampling; a class-weighted loss; SMOTE on
pixels (imbalanced-learn); post-hoc logit adjustment (the imbalanced model's logits minus the log class
prior, Menon et al. 2021); deferred re-weighting (CNN: plain loss for the first DEFER of the steps,
class-weighted after, Cao et al. 2019); real + kept synthetic (augmented) and two stacked arms (class
weighting over real + synthetic; deferred re-weighting whose deferred phase draws real + synthetic with
the balancing weights; the augmented arm finished on real, its head re-fitted on class-balanced real images,
cRT, Kang et al. 2020); with mix ratios, arms that cap each class's synthetic images at a multiple of its
real ones (filled by oversampling, logit-adjusted, or deferred re-weighting); synthetic only (the
classification accuracy score); and, where the caller has it, the full balanced real data (the upper bound).
Classifiers: logistic regression on pixels, and the SmallCNN with its fixed recipe.
Metrics: balanced accuracy, macro-F1, tail recall (mean recall of the 3 classes with the fewest
real training images), per-class recall.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

from augment.amount import sample_weights
from augment.mixing import fill_quota, mix
from augment.paired import paired_bootstrap
from augment.score import cnn
from augment.score.probe import fit_pixel_logreg

# the arms without synthetic images: "best classical arm" is the best of these
CLASSICAL = ("imbalanced", "random oversampling", "class-weighted", "smote", "logit-adjusted",
             "deferred re-weighting")
STACKED = ("class-weighted + synthetic", "deferred re-weighting + synthetic", "augmented, finished on real",
           "deferred re-weighting + synthetic, finished on real")
MATCHED_NOISE = ("noise, as the output", "deferred re-weighting + noise, as the output")  # matched_noise_arms
ARM_ORDER = (*CLASSICAL, "augmented", *STACKED, *MATCHED_NOISE, "synthetic only", "full balanced (upper bound)")
CRT_SHARE = 0.2  # finishing on real: head re-fitting steps as a share of the arm's steps
DEFER = 0.75  # deferred re-weighting: the share of the steps before re-weighting (Cao et al.: 160 of 200 epochs)


@dataclass
class Arm:
    images: np.ndarray   # uint8 (N, C, H, W)
    labels: np.ndarray
    class_weighted: bool = False
    weights: np.ndarray | None = None  # per image: logistic regression's sample_weight, the CNN's batch draw
    logit_adjusted: bool = False  # predict argmax(logits - log prior of `labels`)
    deferred: bool = False  # CNN only: plain draws from the first `early_rows` for DEFER of the steps
    early_rows: int | None = None
    real_rows: int | None = None  # CNN only: finish on real, re-fitting the head on the first real_rows (cRT)
    mixup: float = 0.0  # CNN only: mixup's Beta(alpha, alpha) in every batch (0 = off)


def tail_classes(train_labels: np.ndarray, num_classes: int, n: int = 3) -> list[int]:
    counts = np.bincount(train_labels, minlength=num_classes)
    return sorted(np.argsort(counts, kind="stable")[:n].tolist())


def downstream_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int, tail: list[int]) -> dict:
    recalls = recall_score(y_true, y_pred, labels=list(range(num_classes)), average=None, zero_division=0)
    return {"balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
            "tail_recall": float(np.mean(recalls[tail])),
            "per_class_recall": [round(float(r), 4) for r in recalls]}


def random_oversample(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from imblearn.over_sampling import RandomOverSampler

    flat, yy = RandomOverSampler(random_state=seed).fit_resample(x.reshape(len(x), -1), y)
    return flat.reshape(-1, *x.shape[1:]), yy


def smote(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from imblearn.over_sampling import SMOTE

    k = int(min(5, np.bincount(y).min() - 1))
    flat, yy = SMOTE(random_state=seed, k_neighbors=max(1, k)).fit_resample(x.reshape(len(x), -1).astype(np.float32), y)
    return np.clip(np.rint(flat), 0, 255).astype(np.uint8).reshape(-1, *x.shape[1:]), yy


def capped_synthetic(y: np.ndarray, y_aug: np.ndarray, ratio: float) -> dict[int, tuple[np.ndarray, int]]:
    """Per class of y_aug: the first `ratio` x its real count of its synthetic rows, and how many of its
    synthetic rows that leaves out (the gap the mixed arms fill otherwise)."""
    capped = {}
    for c in np.unique(y_aug):
        syn = np.flatnonzero(y_aug == c)
        n_syn = min(len(syn), int(round(ratio * np.sum(y == c))))
        capped[int(c)] = (syn[:n_syn], len(syn) - n_syn)
    return capped


def mixed_fill(x: np.ndarray, y: np.ndarray, x_aug: np.ndarray, y_aug: np.ndarray, ratio: float,
               seed: int) -> Arm:
    """The augmented arm's class sizes, but each class takes at most `ratio` x its real count of
    synthetic images and fills the rest of its gap by drawing its real images again."""
    rng = np.random.default_rng(seed)
    xs, ys = [x], [y]
    for c, (syn, left_out) in capped_synthetic(y, y_aug, ratio).items():
        again = rng.choice(np.flatnonzero(y == c), left_out, replace=True)
        xs += [x_aug[syn], x[again]]
        ys += [y_aug[syn], y[again]]
    return Arm(np.concatenate(xs), np.concatenate(ys))


def real_plus_capped(x: np.ndarray, y: np.ndarray, x_aug: np.ndarray, y_aug: np.ndarray,
                     ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """The real images, then at most `ratio` x each class's real count of its synthetic ones."""
    rows = np.concatenate([syn for syn, _ in capped_synthetic(y, y_aug, ratio).values()] or [np.zeros(0, int)])
    return np.concatenate([x, x_aug[rows]]), np.concatenate([y, y_aug[rows]]).astype(np.int64)


def logit_adjusted_mix(x: np.ndarray, y: np.ndarray, x_aug: np.ndarray, y_aug: np.ndarray, ratio: float) -> Arm:
    """Real plus capped synthetic images (real_plus_capped), drawn plainly, the prediction logit-adjusted
    by the class prior of that set: synthetic images where they are trusted, logit adjustment (a best
    classical arm with a well-trained CNN) for the rest of the imbalance."""
    return Arm(*real_plus_capped(x, y, x_aug, y_aug, ratio), logit_adjusted=True)


def deferred_mix(x: np.ndarray, y: np.ndarray, x_aug: np.ndarray, y_aug: np.ndarray, ratio: float) -> Arm:
    """Deferred re-weighting whose re-weighted phase draws real plus capped synthetic images
    (real_plus_capped) with class-balancing weights; the plain phase draws the real images only."""
    images, labels = real_plus_capped(x, y, x_aug, y_aug, ratio)
    return Arm(images, labels, weights=balancing_weights(labels, len(y)), deferred=True, early_rows=len(y))


def weighted_output(x: np.ndarray, y: np.ndarray, x_aug: np.ndarray, y_aug: np.ndarray,
                    synthetic_weight: float = 1.0, weights: np.ndarray | None = None) -> Arm:
    """augment's output as a user receives it: the real and the kept synthetic images with the manifest's
    weights (`weights`), or, without them, weights that balance the classes as the manifest's do."""
    images, labels = np.concatenate([x, x_aug]), np.concatenate([y, y_aug]).astype(np.int64)
    if weights is None:
        weights = balancing_weights(labels, len(y), synthetic_weight)
    return Arm(images, labels, weights=weights)


def output_arms(x: np.ndarray, y: np.ndarray, x_aug: np.ndarray, y_aug: np.ndarray,
                weights: np.ndarray) -> dict[str, Arm]:
    """augment's output as a user trains on it, with the manifest's `weights` (real rows first): drawn by the
    weights from the start ('augmented'); in the deferred phase of deferred re-weighting only, the first
    phase drawing the real images uniformly; and that, finished by re-fitting the head on real images (cRT)."""
    arms = {"augmented": weighted_output(x, y, x_aug, y_aug, weights=weights)}
    if len(y_aug):
        both = arms["augmented"].images, arms["augmented"].labels
        arms["deferred re-weighting + synthetic"] = Arm(*both, weights=weights, deferred=True, early_rows=len(y))
        arms["deferred re-weighting + synthetic, finished on real"] = Arm(
            *both, weights=weights, deferred=True, early_rows=len(y), real_rows=len(y))
    return arms


def matched_noise_arms(x: np.ndarray, y: np.ndarray, y_aug: np.ndarray, weights: np.ndarray,
                       seed: int) -> dict[str, Arm]:
    """The noise control matched to an output: as many pure-noise images per class as it has synthetic
    ones, each with the mean weight of its class's synthetic rows, used as output_arms uses them (so a
    gain over it is the images' content, not their count, weights or schedule)."""
    if not len(y_aug):
        return {}
    quota = {int(c): int(n) for c, n in enumerate(np.bincount(y_aug)) if n}
    made = mix("noise", x, y, quota, seed)
    synthetic_w = weights[len(y):]
    per_class = {c: synthetic_w[y_aug == c].mean() for c in quota}
    w = np.concatenate([weights[:len(y)], [per_class[int(c)] for c in made.labels]])
    images, labels = np.concatenate([x, made.images]), np.concatenate([y, made.labels]).astype(np.int64)
    return {"noise, as the output": Arm(images, labels, weights=w),
            "deferred re-weighting + noise, as the output": Arm(images, labels, weights=w, deferred=True,
                                                                early_rows=len(y))}


def balancing_weights(labels: np.ndarray, n_real: int, synthetic_weight: float = 1.0) -> np.ndarray:
    """Per row of `labels` (the first n_real real, the rest synthetic): weights that balance the classes
    at the largest class's size, as the manifest's do."""
    synthetic = np.arange(len(labels)) >= n_real
    targets = np.full(labels.max() + 1, np.bincount(labels).max())
    return sample_weights(labels, synthetic, np.ones(len(labels), bool), targets, synthetic_weight)


def mixed_source_arms(x: np.ndarray, y: np.ndarray, seed: int, kinds: tuple[str, ...],
                      ratio: float | None = None) -> dict[str, Arm]:
    """Per mixing kind (augment.mixing: 'remix', 'cutmix', the 'noise' control): its images topped up to
    the largest class (at most ratio x each class's real count), used as augment's output is (balancing
    weights from the start) and in the deferred phase of deferred re-weighting."""
    arms, quota = {}, fill_quota(y, ratio)
    for kind in kinds:
        made = mix(kind, x, y, quota, seed)
        arms[f"{kind} (weighted)"] = weighted_output(x, y, made.images, made.labels)
        images, labels = np.concatenate([x, made.images]), np.concatenate([y, made.labels]).astype(np.int64)
        arms[f"deferred re-weighting + {kind}"] = Arm(images, labels, weights=balancing_weights(labels, len(y)),
                                                      deferred=True, early_rows=len(y))
    return arms


def mixup_drw(x: np.ndarray, y: np.ndarray, alpha: float = 1.0) -> Arm:
    """Context, not a gate: mixup in every batch with deferred re-weighting (mixup-DRW), a training-time
    recipe whose images never reach the disk."""
    return Arm(x, y, class_weighted=True, deferred=True, mixup=alpha)


def chosen_arms(arms: dict[str, Arm], spec: str) -> dict[str, Arm]:
    """The arms a benchmark's --arms names (';'-separated, as some names hold a comma), in that order;
    ValueError naming any that is not among `arms`."""
    wanted = [a.strip() for a in spec.split(";") if a.strip()]
    unknown = sorted(set(wanted) - set(arms))
    if unknown:
        raise ValueError(f"--arms: unknown arm(s) {unknown}; the arms are {list(arms)}")
    return {a: arms[a] for a in wanted}


def build_arms(x: np.ndarray, y: np.ndarray, seed: int, *, x_aug: np.ndarray | None = None,
               y_aug: np.ndarray | None = None, x_syn: np.ndarray | None = None, y_syn: np.ndarray | None = None,
               x_full: np.ndarray | None = None, y_full: np.ndarray | None = None,
               mix_ratios: tuple[float, ...] = (), synthetic_weight: float = 1.0) -> dict[str, Arm]:
    """x_aug/y_aug: the synthetic images added to the real ones for the augmented arm; x_syn/y_syn:
    the synthetic-only training set; x_full/y_full: the balanced real upper bound; mix_ratios: extra arms
    that cap each class's synthetic images at ratio x its real ones (mixed_fill, logit_adjusted_mix,
    deferred_mix)."""
    arms = {"imbalanced": Arm(x, y), "random oversampling": Arm(*random_oversample(x, y, seed)),
            "class-weighted": Arm(x, y, class_weighted=True), "smote": Arm(*smote(x, y, seed))}
    arms["logit-adjusted"] = Arm(x, y, logit_adjusted=True)
    arms["deferred re-weighting"] = Arm(x, y, class_weighted=True, deferred=True)
    if x_aug is not None:
        arms["augmented"] = weighted_output(x, y, x_aug, y_aug, synthetic_weight)
    if x_aug is not None and len(y_aug):  # stacked arms: only where there are synthetic images to stack
        both = np.concatenate([x, x_aug]), np.concatenate([y, y_aug]).astype(np.int64)
        arms["class-weighted + synthetic"] = Arm(*both, class_weighted=True)
        arms["deferred re-weighting + synthetic"] = Arm(*both, weights=arms["augmented"].weights, deferred=True,
                                                        early_rows=len(y))
        arms["augmented, finished on real"] = Arm(*both, weights=arms["augmented"].weights, real_rows=len(y))
        for r in mix_ratios:
            arms[f"augmented, synthetic <= {r:g}x real"] = mixed_fill(x, y, x_aug, y_aug, r, seed)
            arms[f"logit-adjusted + synthetic <= {r:g}x real"] = logit_adjusted_mix(x, y, x_aug, y_aug, r)
            arms[f"deferred re-weighting + synthetic <= {r:g}x real"] = deferred_mix(x, y, x_aug, y_aug, r)
    if x_syn is not None and len(np.unique(y_syn)) > 1:
        arms["synthetic only"] = Arm(x_syn, y_syn)
    if x_full is not None:
        arms["full balanced (upper bound)"] = Arm(x_full, y_full)
    return arms


def fit_predict(classifier: str, arm: Arm, x_test: np.ndarray, num_classes: int, seed: int, *,
                cnn_steps: int = 1000, cnn_width: int = 32, device: str | torch.device = "cpu",
                augmentation: str = "shift") -> np.ndarray:
    """Train `classifier` on the arm and predict the test images. The CNN draws batches by the arm's weights
    (a weighted sampler); logistic regression takes them as sample weights. augmentation: the CNN's."""
    log_prior = np.log(np.bincount(arm.labels, minlength=num_classes).clip(1) / len(arm.labels))
    if classifier == "logreg":
        if arm.deferred or arm.real_rows is not None or arm.mixup:
            raise ValueError("deferred re-weighting, mixup and re-fitting the head need a network's training steps, "
                             "which logistic regression (a convex fit) has not; evaluate these arms with the cnn")
        flat = arm.images.reshape(len(arm.images), -1).astype(np.float32) / 255.0
        w = None if arm.weights is None else arm.weights * len(arm.weights) / arm.weights.sum()
        clf = fit_pixel_logreg(flat, arm.labels, seed, balanced=arm.class_weighted, sample_weight=w)
        scores = clf.decision_function(x_test.reshape(len(x_test), -1).astype(np.float32) / 255.0)
        if scores.ndim == 1:  # two classes: the log-odds of the second
            scores = np.stack([np.zeros_like(scores), scores], 1)
        if arm.logit_adjusted:
            scores = scores - log_prior[clf.classes_]
        return clf.classes_[scores.argmax(1)]
    if classifier == "cnn":
        model = cnn.train_cnn(torch.from_numpy(arm.images), torch.from_numpy(arm.labels.astype(np.int64)),
                              num_classes, steps=cnn_steps, seed=seed, width=cnn_width, device=device,
                              balanced=False, class_weighted=arm.class_weighted, sample_weight=arm.weights,
                              defer=DEFER if arm.deferred else 0.0, early_rows=arm.early_rows,
                              augmentation=augmentation, mixup=arm.mixup)
        if arm.real_rows is not None:
            x_real, y_real = arm.images[:arm.real_rows], arm.labels[:arm.real_rows].astype(np.int64)
            cnn.retrain_head(model, torch.from_numpy(x_real), torch.from_numpy(y_real), seed=seed, device=device,
                             steps=max(1, round(CRT_SHARE * cnn_steps)), augmentation=augmentation)
        log_p = np.log(np.maximum(cnn.predict(model, torch.from_numpy(x_test), device)[0], 1e-30))
        return (log_p - log_prior if arm.logit_adjusted else log_p).argmax(1)
    raise ValueError(f"unknown downstream classifier {classifier!r}; use 'logreg' or 'cnn'")


def evaluate_arms(arms: dict[str, Arm], x_test: np.ndarray, y_test: np.ndarray, num_classes: int, tail: list[int],
                  classifiers: tuple[str, ...] = ("logreg", "cnn"), seed: int = 0,
                  predictions: dict | None = None, **cnn_kw) -> pd.DataFrame:
    """One row of metrics per classifier and arm; `predictions`, if given, receives every prediction
    keyed (classifier, arm, seed), for `paired_differences`."""
    rows = []
    for classifier in classifiers:
        for name in [a for a in ARM_ORDER if a in arms] + [a for a in arms if a not in ARM_ORDER]:
            if (arms[name].deferred or arms[name].real_rows is not None or arms[name].mixup) and classifier != "cnn":
                continue  # deferral and a re-fitted head need a network: the CNN's arms only
            pred = fit_predict(classifier, arms[name], x_test, num_classes, seed, **cnn_kw)
            if predictions is not None:
                predictions[(classifier, name, seed)] = np.asarray(pred)
            rows.append({"classifier": classifier, "arm": name, "train_images": len(arms[name].labels), "seed": seed,
                         **downstream_metrics(y_test, pred, num_classes, tail)})
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per classifier and arm, plus the share of the gap between the best
    classical arm and the upper bound (or, without it, the improvement over the best classical arm)
    that the augmented arm closes."""
    metrics = ["balanced_accuracy", "macro_f1", "tail_recall"]
    g = runs.groupby(["classifier", "arm"], sort=False)[metrics]
    out = g.mean().add_suffix("_mean").join(g.std(ddof=0).add_suffix("_std")).reset_index()
    return out


def _correct(predictions: dict, classifier: str, arm: str, seeds: list[int], y_test: np.ndarray) -> np.ndarray:
    return np.stack([predictions[(classifier, arm, s)] == y_test for s in seeds])


def paired_differences(y_test: np.ndarray, predictions: dict, summary: pd.DataFrame) -> pd.DataFrame:
    """For every classifier and arm: balanced accuracy minus random oversampling's and minus the best
    classical arm's (the best mean of the arms without synthetic images), each with its paired bootstrap
    95% interval over seeds and test images (augment.paired)."""
    rows = []
    for classifier in summary["classifier"].unique():
        means = summary[summary["classifier"] == classifier].set_index("arm")["balanced_accuracy_mean"]
        classical = [a for a in means.index if a in CLASSICAL]
        best = max(classical, key=lambda a: means[a]) if classical else None
        seeds = sorted({s for (c, _, s) in predictions if c == classifier})
        for arm in means.index:
            row = {"classifier": classifier, "arm": arm, "best_classical": best}
            for name, ref in (("minus_random_oversampling", "random oversampling"), ("minus_best_classical", best)):
                # the seeds both arms ran (rows merged from runs of different length pair on their common seeds)
                both = [s for s in seeds if (classifier, arm, s) in predictions and (classifier, ref, s) in predictions]
                if ref is None or ref not in means.index or ref == arm or not both:
                    continue
                d = paired_bootstrap(_correct(predictions, classifier, arm, both, y_test),
                                     _correct(predictions, classifier, ref, both, y_test), y_test)
                row.update({name: d.mean, f"{name}_low": d.low, f"{name}_high": d.high})
            rows.append(row)
    return pd.DataFrame(rows)


def gap_closed(summary: pd.DataFrame, classifier: str, metric: str = "balanced_accuracy") -> dict:
    rows = summary[summary["classifier"] == classifier].set_index("arm")[f"{metric}_mean"]
    classical = {a: rows[a] for a in CLASSICAL if a in rows}
    if "augmented" not in rows or not classical:
        return {}
    best_name = max(classical, key=classical.get)
    result = {"best_classical": best_name, "best_classical_value": float(classical[best_name]),
              "augmented": float(rows["augmented"]),
              "augmented_minus_random_oversampling": float(rows["augmented"] - rows.get("random oversampling", np.nan))}
    if "full balanced (upper bound)" in rows:
        gap = rows["full balanced (upper bound)"] - classical[best_name]
        result["upper_bound"] = float(rows["full balanced (upper bound)"])
        result["gap_closed"] = float((rows["augmented"] - classical[best_name]) / gap) if gap > 0 else float("nan")
    return result


# Kept for the demo: logistic regression only, flattened [0, 1] pixels in.
def logreg_arms(x_train: np.ndarray, y_train: np.ndarray, x_syn: np.ndarray, y_syn: np.ndarray,
                x_test: np.ndarray, y_test: np.ndarray, num_classes: int, seed: int = 0) -> pd.DataFrame:
    to_u8 = lambda a: np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)  # noqa: E731
    arms = build_arms(to_u8(x_train), y_train, seed, x_aug=to_u8(x_syn), y_aug=y_syn)
    df = evaluate_arms(arms, to_u8(x_test), y_test, num_classes, tail_classes(y_train, num_classes), ("logreg",), seed)
    return df.drop(columns=["classifier", "seed", "per_class_recall"])
