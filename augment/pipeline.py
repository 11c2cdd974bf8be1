"""The pipeline as stage functions over one run layout: load, train, generate, score, export.

Each stage reads its inputs from and writes its outputs to the run's work folder (a hidden
sibling of the output folder), and returns a small JSON-able summary. The CLI calls them
in order through `run_pipeline`; the Prefect flow calls each as a task. A rerun with the
same inputs and config picks up where an interrupted one stopped (training resumes from its
last checkpoint); the output folder appears only when complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from augment import __version__
from augment.balance import plan_synthetic
from augment.cache import TrainingCache, run_key, training_key
from augment.checkpoint import atomic_write_bytes, file_sha256, generator_sha256, load_with_sha256
from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.data.readers import load_dataset
from augment.errors import ConfigError
from augment.export import SCORE_COLUMNS, check_output_target, write_dataset
from augment.generate import Synthetic, generate, load_gan
from augment.models import get_variant
from augment.models.backbone import has_spectral_norm
from augment.multi import run_dir
from augment.provenance import now_iso, package_versions
from augment.report import write_report, write_training_figures
from augment.score.aux_classifier import DESCRIPTION as AUX_DESCRIPTION
from augment.score.aux_classifier import load_aux_classifier, train_aux_classifier
from augment.score.external import classification_accuracy_score, fit_external
from augment.score.gan_scores import gan_scores
from augment.score.metrics import MetricInputs, nearest_distance, quality_table
from augment.score.probe import PixelProbe
from augment.select import select
from augment.train import ProgressFn, compute_device, resolve_device, train, training_signature

log = logging.getLogger("augment")


@dataclass(frozen=True)
class RunLayout:
    """Where a run keeps its intermediate files (work/) and where the result goes (out)."""

    out: Path

    @classmethod
    def for_output(cls, out: str | Path) -> "RunLayout":
        return cls(Path(out).absolute())

    @property
    def work(self) -> Path:
        return self.out.parent / f".{self.out.name}.augment-work"

    @property
    def run_json(self) -> Path:
        return self.work / "run.json"

    @property
    def dataset(self) -> Path:
        return self.work / "dataset.npz"

    @property
    def train_dir(self) -> Path:
        return self.work / "train"

    @property
    def plan(self) -> Path:
        return self.work / "plan.json"

    @property
    def candidates(self) -> Path:
        return self.work / "candidates.npz"

    @property
    def scores(self) -> Path:
        return self.work / "scores.parquet"


def _write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, lambda fh: fh.write(json.dumps(obj, indent=2, default=str).encode()))


def _read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


# ---------------------------------------------------------------- stages

def stage_load(source: str | LabeledImages, cfg: Config, layout: RunLayout) -> dict:
    """Read and validate the dataset and the plan, check the output target, and set up (or reuse) the
    work folder. Everything that can be refused is refused here, before anything is written."""
    data = _read(source, cfg)
    key = run_key(data.fingerprint, cfg)
    if _output_key(layout.out) == key:  # the same run finished before: nothing to do
        shutil.rmtree(layout.work, ignore_errors=True)  # left only if killed while tidying up
        return {"up_to_date": True, "source": data.source, "fingerprint": data.fingerprint, "key": key}
    check_output_target(layout.out, cfg.out.overwrite)
    plan = plan_synthetic(data.counts(), data.class_names, cfg.balance.sampling_strategy)
    variant = get_variant(cfg.model.variant)
    if data.num_classes < variant.min_classes:
        raise ConfigError(f"model.variant = {variant.name!r} needs at least {variant.min_classes} classes; "
                          f"'{data.source}' has {data.num_classes}. Use 'acgan', 'cgan' or 'dcgan'.")
    run = {"source": data.source, "fingerprint": data.fingerprint, "training": training_signature(cfg),
           "config": cfg.to_dict()}
    if layout.run_json.exists():
        old = _read_json(layout.run_json)
        same = old.get("fingerprint") == run["fingerprint"] and old.get("training") == run["training"]
        if not same:
            if not cfg.out.overwrite:
                raise ConfigError(f"An unfinished run in '{layout.work}' used other data or training settings. "
                                  "Rerun with the same ones to resume it, or pass --set out.overwrite=true to "
                                  "discard it.")
            shutil.rmtree(layout.work)
    layout.work.mkdir(parents=True, exist_ok=True)
    if not layout.dataset.exists() or not layout.run_json.exists():
        data.save(layout.dataset)
    _write_json(layout.plan, plan)
    _write_json(layout.run_json, run)
    return {"up_to_date": False, "source": data.source, "fingerprint": data.fingerprint, "key": key,
            "num_images": len(data), "class_names": data.class_names, "counts": data.counts(),
            "image_size": data.size, "channels": data.channels, "notes": data.notes}


def _read(source: str | LabeledImages, cfg: Config) -> LabeledImages:
    return source if isinstance(source, LabeledImages) else load_dataset(source, cfg.image, cfg.seed,
                                                                         cfg.data.allow_outside_root)


def _output_key(out: Path) -> str | None:
    try:
        return json.loads((out / "dataset.json").read_text()).get("run_key")
    except (OSError, ValueError):
        return None


def stage_load_into_root(source: str | LabeledImages, cfg: Config, out_root: str | Path, name: str) -> dict:
    """Scheduled runs: load and validate, then place this run at <out_root>/<name>/runs/<run key>. If a
    complete output for the same data and settings is already there, nothing is written and
    `up_to_date` is true. Call it holding the dataset's lock (augment.locking.run_lock)."""
    data = _read(source, cfg)
    out = run_dir(out_root, name, run_key(data.fingerprint, cfg))
    return {**stage_load(data, cfg, RunLayout.for_output(out)), "out": str(out)}


def stage_plan(cfg: Config, layout: RunLayout) -> dict[str, int]:
    """Synthetic images per class, as validated and written by the load stage."""
    return _read_json(layout.plan)


def _single_class(data: LabeledImages, c: int) -> LabeledImages:
    idx = torch.nonzero(data.labels == c).squeeze(1)
    return LabeledImages(data.images[idx].clone(), torch.zeros(len(idx), dtype=torch.long), [data.class_names[c]],
                         [data.sample_ids[i] for i in idx.tolist()], data.source, dict(data.notes))


def stage_train(cfg: Config, layout: RunLayout, on_progress: ProgressFn | None = None,
                cache: str | Path | None = None) -> dict:
    """Train or resume the GAN (one per class that needs images, for unconditional variants), plus an
    auxiliary classifier where the variant has no class head. The best checkpoint of each is chosen
    by the pixel-probe quality check. With `cache` (a folder), a finished training of the same data
    and settings is reused, and a new one is published there."""
    data = LabeledImages.load(layout.dataset)
    store = TrainingCache(cache) if cache is not None else None
    key = training_key(data.fingerprint, cfg)
    done = layout.train_dir / "result.json"
    if not done.exists() and store is not None and store.restore(key, layout.train_dir):
        log.info("training reused from the cache (%s)", key[:12])
        _write_json(done, {**_read_json(done), "from_cache": True})
    if done.exists():
        summary = _read_json(done)
        if summary.get("key") == key:
            return summary
        done.unlink()  # other settings (e.g. more steps): train() resumes from the last checkpoint
    plan = _read_json(layout.plan)
    variant = get_variant(cfg.model.variant)
    probe = PixelProbe(data, seed=cfg.seed)
    if variant.conditional:
        jobs = [("all", data, None, list(range(data.num_classes)))]
    else:
        wanted = [c for c, n in enumerate(data.class_names) if plan[n] > 0]
        jobs = [(f"class-{c:03d}", _single_class(data, c), [c], [c]) for c in wanted]
    aux_path, aux_seconds = None, 0.0
    if not variant.has_class_head:
        # Trained first, so that its time comes out of train.max_seconds like the GAN's own.
        aux_seconds = train_aux_classifier(data, cfg, layout.train_dir / "aux_classifier.pt")
        aux_path = "aux_classifier.pt"
    job_cfg = _share_of_budget(cfg, aux_seconds, len(jobs))
    runs, class_runs = {}, {}
    for i, (job, subset, label_map, classes) in enumerate(jobs):
        progress = None
        if on_progress is not None:
            progress = (lambda i: lambda step, total, row: on_progress(i * total + step, len(jobs) * total, row))(i)
        result = _train_with_smaller_batches_on_oom(subset, job_cfg, layout.train_dir / job, progress,
                                                    probe.quality_fn(label_map=label_map))
        write_training_figures(layout.train_dir / job)
        runs[job] = _relative_paths(asdict(result), layout.train_dir)
        class_runs.update({data.class_names[c]: job for c in classes})
    summary = {"key": key, "from_cache": False, "variant": variant.name, "runs": runs, "class_runs": class_runs, "aux_classifier": aux_path,
               "aux_scorer": f"{variant.name} discriminator's auxiliary class head" if aux_path is None
               else AUX_DESCRIPTION,
               "seconds": round(aux_seconds + sum(r["seconds"] for r in runs.values()), 3),
               "aux_classifier_seconds": round(aux_seconds, 3),
               "device": next(iter(runs.values()))["device"] if runs else str(resolve_device(cfg.train.device))}
    _write_json(done, summary)
    if store is not None:
        store.publish(key, layout.train_dir)
    return summary


def _share_of_budget(cfg: Config, spent: float, jobs: int) -> Config:
    """train.max_seconds bounds the whole training stage: what the auxiliary classifier spent comes off
    it, and the rest is shared equally by the GANs trained (one per class for unconditional variants)."""
    budget = cfg.train.max_seconds
    if not budget or jobs == 0:
        return cfg
    share = max(budget - spent, 0.0) / jobs
    # 0 would mean "no limit": a spent budget still leaves each GAN its first step and checkpoint.
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, max_seconds=max(share, 1e-3)))


def _train_with_smaller_batches_on_oom(data: LabeledImages, cfg: Config, run_dir: Path, progress, quality):
    """Out of device memory: halve train.batch_size (down to 2), log it, and resume from the last checkpoint."""
    while True:
        try:
            return train(data, cfg, run_dir, on_progress=progress, quality=quality)
        except torch.OutOfMemoryError:
            if cfg.train.batch_size <= 2:
                raise
            smaller = max(2, cfg.train.batch_size // 2)
            log.warning("out of device memory at train.batch_size = %d; retrying with %d from the last checkpoint",
                        cfg.train.batch_size, smaller)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, batch_size=smaller))


def _relative_paths(result: dict, root: Path) -> dict:
    """Paths in result.json are relative to the training folder, which moves (work folder, output, cache)."""
    for k in ("run_dir", "best_checkpoint", "last_checkpoint"):
        result[k] = Path(result[k]).relative_to(root).as_posix()
    return result


def _need_by_index(plan: dict[str, int], class_names: list[str]) -> dict[int, int]:
    return {class_names.index(n): k for n, k in plan.items() if k > 0}


class _Models:
    """The trained GAN(s) of a run, loaded on demand: which one serves each class."""

    def __init__(self, layout: RunLayout, device: torch.device):
        self.root = layout.train_dir
        self.summary = _read_json(layout.train_dir / "result.json")
        self.device = device
        self._loaded: dict[str, Any] = {}

    def run_of(self, class_name: str) -> str:
        return self.summary["class_runs"][class_name]

    def gan(self, key: str):
        if key not in self._loaded:
            self._loaded[key] = load_gan(self.root / self.summary["runs"][key]["best_checkpoint"], self.device)
        return self._loaded[key]

    def aux_classifier(self):
        path = self.summary["aux_classifier"]
        return load_aux_classifier(self.root / path, self.device) if path else None


def stage_generate(cfg: Config, layout: RunLayout, round_index: int = 0) -> dict:
    """Generate candidates: oversample x plan in round 0; later rounds top up the classes left short."""
    data_names = LabeledImages.load(layout.dataset).class_names
    plan = _read_json(layout.plan)
    models = _Models(layout, compute_device(cfg.train))
    need = _need_by_index(plan, data_names)
    if round_index == 0:
        todo = {c: math.ceil(n * cfg.select.oversample) for c, n in need.items()}
        existing = None
    else:
        existing = Synthetic.load(layout.candidates)
        short = _read_json(layout.work / "selection.json")["shortfall"]
        todo = {data_names.index(n): math.ceil(k * cfg.select.oversample * 2 ** round_index) for n, k in short.items()}
    start = {}
    if existing is not None:
        for c in todo:
            have = existing.latent_index[existing.labels == c]
            start[c] = int(have.max()) + 1 if len(have) else 0
    allc = existing
    for c, n in sorted(todo.items()):
        gan = models.gan(models.run_of(data_names[c]))
        new = generate(gan, {c: n}, cfg.seed, start, round_index, device=models.device,
                       precision=cfg.train.precision)
        allc = new if allc is None else allc.concat(new)
    allc.save(layout.candidates)
    return {"round": round_index, "generated": {data_names[c]: n for c, n in todo.items()}, "candidates": len(allc)}


def _external(cfg: Config, layout: RunLayout, data: LabeledImages, device: torch.device):
    """The external classifier (fitted once per run and cached for the 'cnn' recipe), its report,
    the real images' features and each real image's distance to its nearest other real image
    (both kept in the work folder: they are the same for every selection round)."""
    ext, report = fit_external(data, cfg.score.external, seed=cfg.seed, device=device,
                               steps=cfg.score.external_steps, floor=cfg.score.min_external_accuracy,
                               cache=layout.work / "external.pt")
    feats_path = _real_features_path(cfg, layout)
    if feats_path.exists():
        real_feats = np.load(feats_path)
    else:
        real_feats = ext.predict(data.images)[1].astype(np.float32)
        atomic_write_bytes(feats_path, lambda fh: np.save(fh, real_feats))
    nn_path = feats_path.with_name(feats_path.name.replace("features", "nn_distance"))
    if nn_path.exists():
        real_nn = np.load(nn_path)
    else:
        real_nn = nearest_distance(real_feats, real_feats, exclude_self=True)
        atomic_write_bytes(nn_path, lambda fh: np.save(fh, real_nn))
    return ext, report, real_feats, real_nn


def stage_score(cfg: Config, layout: RunLayout) -> dict:
    """Score every candidate (GAN class head or auxiliary classifier, discriminator realism, external
    classifier, nearest real image in its feature space) and select per class; report shortfalls.
    Candidates scored in an earlier round keep their scores: only a top-up round's new ones are scored."""
    data = LabeledImages.load(layout.dataset)
    names = data.class_names
    plan = _read_json(layout.plan)
    models = _Models(layout, compute_device(cfg.train))
    cand = Synthetic.load(layout.candidates)
    ext, ext_report, real_feats, real_nn = _external(cfg, layout, data, models.device)
    key = _scorer_key(cfg, layout)
    scored = _load_candidate_scores(layout, key, cand)
    start = len(scored["aux_prob"]) if scored else 0
    if not scored or start < len(cand):
        new = _score_candidates(cand, start, models, ext, real_feats, names)
        scored = {k: np.concatenate([scored[k], new[k]]) for k in new} if scored else new
        _save_candidate_scores(layout, key, cand, scored)
    aux_prob, realism, probs, feats, nn = (scored[k] for k in ("aux_prob", "realism", "probs", "feats", "nn"))
    labels = cand.labels.numpy()
    ext_prob = probs[np.arange(len(labels)), labels] if len(labels) else np.zeros(0)
    ext_pred = probs.argmax(1) if len(labels) else np.zeros(0, dtype=int)
    copy_threshold = float(np.percentile(real_nn, cfg.select.copy_percentile))
    sel = select(labels, _need_by_index(plan, names), cfg.select, aux_prob=aux_prob, ext_prob=ext_prob,
                 ext_pred=ext_pred, nn_distance=nn, features=feats, copy_threshold=copy_threshold,
                 latent_index=cand.latent_index.numpy())
    df = pd.DataFrame({"label": labels, "latent_index": cand.latent_index.numpy(), "round": cand.rounds.numpy(),
                       "aux_prob": aux_prob, "ext_prob": ext_prob, "ext_pred": ext_pred, "realism": realism,
                       "nn_distance": nn, "kept": sel.kept, "reject_reason": sel.reason})
    tmp = layout.scores.with_name(layout.scores.name + ".tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(layout.scores)
    summary = {"kept": {n: int(sel.kept[labels == c].sum()) for c, n in enumerate(names)},
               "shortfall": {names[c]: k for c, k in sel.shortfall.items()},
               "rejected_by": {r: int((sel.reason == r).sum()) for r in np.unique(sel.reason) if r},
               "copy_threshold": copy_threshold, "external": ext_report.to_dict()}
    _write_json(layout.work / "selection.json", summary)
    return summary


def _external_key(cfg: Config) -> str:
    """What the external classifier's outputs depend on: its recipe (a file's content for TorchScript)."""
    external = cfg.score.external
    if external.startswith("torchscript:") and Path(external.split(":", 1)[1]).is_file():
        external += ":" + file_sha256(Path(external.split(":", 1)[1]))
    return json.dumps({"external": external, "external_steps": cfg.score.external_steps, "seed": cfg.seed},
                      sort_keys=True)


def _real_features_path(cfg: Config, layout: RunLayout) -> Path:
    """The real images' features, named for the external classifier that made them."""
    return layout.work / f"real_features-{hashlib.sha256(_external_key(cfg).encode()).hexdigest()[:12]}.npy"


def _scorer_key(cfg: Config, layout: RunLayout) -> str:
    """What the stored candidate scores depend on besides the candidates: the trained GANs and the
    external classifier (a changed score.external cannot reuse scores of another)."""
    return json.dumps({"training": _read_json(layout.train_dir / "result.json")["key"],
                       "external": _external_key(cfg)}, sort_keys=True)


SCORES_FILE = "candidate_scores.npz"


def _load_candidate_scores(layout: RunLayout, key: str, cand: Synthetic) -> dict[str, np.ndarray]:
    """The stored scores of the first candidates, if the same scorers made them for the same
    candidates (class and latent index row by row); else none."""
    path = layout.work / SCORES_FILE
    if path.exists():
        with np.load(path) as z:
            stored = {k: z[k] for k in z.files}
        n = len(stored["aux_prob"])
        same_rows = n <= len(cand) and np.array_equal(stored.pop("label"), cand.labels.numpy()[:n]) \
            and np.array_equal(stored.pop("latent_index"), cand.latent_index.numpy()[:n])
        if str(stored.pop("key")) == key and same_rows:
            return stored
    return {}


def _save_candidate_scores(layout: RunLayout, key: str, cand: Synthetic, scores: dict[str, np.ndarray]) -> None:
    atomic_write_bytes(layout.work / SCORES_FILE, lambda fh: np.savez(
        fh, key=np.array(key), label=cand.labels.numpy(), latent_index=cand.latent_index.numpy(), **scores))


def _score_candidates(cand: Synthetic, start: int, models: "_Models", ext, real_feats: np.ndarray,
                      names: list[str]) -> dict[str, np.ndarray]:
    """GAN head (or auxiliary classifier) and realism, external probabilities and features, and the
    distance to the nearest real image, for candidates start..end (new rows are appended by rounds)."""
    labels = cand.labels.numpy()[start:]
    images = cand.images[start:]
    aux = models.aux_classifier()
    aux_prob, realism = np.zeros(len(labels)), np.zeros(len(labels))
    for c in np.unique(labels):
        mask = labels == c
        idx = torch.from_numpy(np.flatnonzero(mask))
        sc = gan_scores(models.gan(models.run_of(names[c])), images[idx], cand.labels[start:][idx], aux,
                        device=models.device)
        aux_prob[mask], realism[mask] = sc["aux_prob"], sc["realism"]
    probs, feats = ext.predict(images)
    feats = feats.astype(np.float32)
    return {"aux_prob": aux_prob, "realism": realism, "probs": probs.reshape(len(labels), -1),
            "feats": feats.reshape(len(labels), -1), "nn": nearest_distance(feats, real_feats)}


def _quality(cfg: Config, layout: RunLayout, data: LabeledImages, cand: Synthetic, scores: pd.DataFrame,
             selection: dict) -> pd.DataFrame | None:
    """Metrics of the kept synthetic images per class and overall, plus the classification accuracy
    score (the external recipe trained on kept synthetic images only, tested on held-out real ones)."""
    scores_path = layout.work / SCORES_FILE
    if not len(cand) or not scores_path.exists():
        return None
    kept = scores["kept"].to_numpy(bool).copy()
    if not kept.any():
        return None
    with np.load(scores_path) as z:
        feats = z["feats"]
    real_feats = np.load(_real_features_path(cfg, layout))
    inputs = MetricInputs(real_feats, feats[kept], cand.labels.numpy()[kept], scores["ext_pred"].to_numpy()[kept],
                          data.num_classes, selection["copy_threshold"], scores["nn_distance"].to_numpy()[kept])
    table = quality_table(real_feats, data.labels.numpy(), inputs, data.class_names, seed=cfg.seed)
    # Kept images agree with the external classifier by construction when select.require_agreement
    # is on; how often it reads *all* candidates as their class says how good the generator is.
    labels, preds = cand.labels.numpy(), scores["ext_pred"].to_numpy()
    per_class = {data.class_names[c]: float((preds[labels == c] == c).mean()) for c in np.unique(labels)}
    per_class["all"] = float((preds == labels).mean())
    table.insert(table.columns.get_loc("ext_accuracy") + 1, "ext_accuracy_all_candidates",
                 [per_class[name] for name in table["class"]])
    if cfg.score.cas:
        cas = classification_accuracy_score(cand.images[torch.from_numpy(kept)], cand.labels[torch.from_numpy(kept)],
                                            data, cfg)
        table["cas"] = [cas.get(name, float("nan")) for name in table["class"]]
    return table


def stage_export(cfg: Config, layout: RunLayout, extra_sections: list[tuple[str, pd.DataFrame]] | None = None) -> dict:
    """Write the output folder atomically, then remove the work folder. Returns the summary."""
    data = LabeledImages.load(layout.dataset)
    plan = _read_json(layout.plan)
    training = _read_json(layout.train_dir / "result.json")
    cand = Synthetic.load(layout.candidates) if layout.candidates.exists() else \
        Synthetic.empty(data.channels, data.size, cfg.seed)
    scores = pd.read_parquet(layout.scores) if layout.scores.exists() else \
        pd.DataFrame({c: [] for c in SCORE_COLUMNS})
    selection = _read_json(layout.work / "selection.json") if (layout.work / "selection.json").exists() else \
        {"shortfall": {}, "rejected_by": {}, "external": None, "copy_threshold": None}
    quality = _quality(cfg, layout, data, cand, scores, selection)
    names = data.class_names
    checkpoints = []
    for key, run in training["runs"].items():
        state, sha256 = load_with_sha256(layout.train_dir / run["best_checkpoint"])
        checkpoints.append({"path": f"train/{run['best_checkpoint']}", "sha256": sha256,
                            "generator_sha256": generator_sha256(state),
                            "spectral_norm": has_spectral_norm(state["discriminator"]),
                            "step": run["best_step"], "steps_trained": run["step"], "quality_score": run["best_score"],
                            "classes": [n for n, k in training["class_runs"].items() if k == key],
                            "seconds": run["seconds"], "resumed_from": run["resumed_from"], "problems": run["problems"],
                            "rollbacks": run.get("rollbacks", 0), "batch_size": run.get("batch_size")})
    generator_of = {c: f"{cfg.model.variant}@{ck['generator_sha256'][:12]}" for ck in checkpoints for c in ck["classes"]}
    labels = cand.labels.numpy()
    kept = scores["kept"].to_numpy(bool)
    before = data.counts_by_name()
    kept_by = {n: int(kept[labels == c].sum()) for c, n in enumerate(names)}
    meta = {
        "augment_version": __version__, "created_at": now_iso(), "source": data.source, "seed": cfg.seed,
        "run_key": run_key(data.fingerprint, cfg),
        "dataset_fingerprint": data.fingerprint, "class_names": names,
        "image": {"size": data.size, "channels": data.channels},
        "counts_before": before, "plan": plan, "kept": kept_by,
        "rejected": {n: int((~kept[labels == c]).sum()) for c, n in enumerate(names)},
        "counts_after": {n: before[n] + kept_by[n] for n in names},
        "shortfall": selection["shortfall"], "normalisation": data.notes,
        "scorers": {"aux_prob": training["aux_scorer"],
                    "realism": "sigmoid of the discriminator's adversarial logit",
                    "ext_prob": f"external classifier '{cfg.score.external}' trained on the real images only",
                    "nn_distance": "distance to the nearest real training image in the external classifier's "
                                   "feature space"},
        "external_classifier": selection["external"], "copy_threshold": selection["copy_threshold"],
        "rejected_by": selection["rejected_by"],
        "quality": quality.to_dict(orient="records") if quality is not None else None,
        "checkpoint": checkpoints[0] if checkpoints else None, "checkpoints": checkpoints,
        "checkpoint_selected_by": "pixel-probe quality check (fidelity x diversity)" + (
            f": the latest checkpoint within train.best_tolerance = {cfg.train.best_tolerance} of the highest score"
            if cfg.train.best_tolerance else ""),
        "training": {"variant": training["variant"], "seconds": training["seconds"], "device": training["device"],
                     "precision": next(iter(training["runs"].values()), {}).get("precision"),
                     "from_cache": training.get("from_cache", False), "key": training.get("key"),
                     "steps": max((r["step"] for r in training["runs"].values()), default=0),
                     "resumed_from": max((r["resumed_from"] for r in training["runs"].values()), default=0)},
        "config": cfg.to_dict(), "package_versions": package_versions(),
    }
    for n, k in selection["shortfall"].items():
        log.warning("class %r: %d synthetic images short of the plan after %d rounds", n, k, cfg.select.max_rounds)
    write_dataset(
        layout.out, data, cand, scores, meta, generator=lambda c: generator_of.get(names[c], cfg.model.variant),
        train_dir=layout.train_dir, overwrite=cfg.out.overwrite,
        extras=lambda tmp, m: write_report(tmp, meta, m, quality, extra_sections))
    shutil.rmtree(layout.work, ignore_errors=True)
    return summary_from_output(layout.out)


def summary_from_output(out: str | Path) -> dict:
    """The summary `stage_export` returned, rebuilt from a finished output folder."""
    out = Path(out)
    meta = _read_json(out / "dataset.json")
    rows = len(pd.read_parquet(out / "manifest.parquet", columns=["path"]))
    return {"out": str(out), "manifest_rows": rows, "class_names": meta["class_names"],
            "quality": meta.get("quality"), "external_classifier": meta.get("external_classifier"),
            "counts_before": meta["counts_before"], "plan": meta["plan"], "kept": meta["kept"],
            "rejected": meta["rejected"], "counts_after": meta["counts_after"], "shortfall": meta["shortfall"],
            "checkpoint_step": (meta.get("checkpoint") or {}).get("step", 0),
            "train_seconds": meta["training"]["seconds"]}


def run_pipeline(source: str | LabeledImages, cfg: Config, out: str | Path,
                 on_progress: ProgressFn | None = None, on_stage: Callable[[str], None] | None = None,
                 before_export: Callable[[RunLayout], list[tuple[str, pd.DataFrame]]] | None = None) -> dict:
    """Every stage in order; `on_stage(name)` is told as each one starts. `before_export(layout)` may
    return extra markdown sections for the report (the demo's downstream check)."""
    layout = RunLayout.for_output(out)
    tell = on_stage or (lambda name: None)
    tell("load")
    if stage_load(source, cfg, layout)["up_to_date"]:
        tell("up to date: the same data and settings produced this output before")
        return {**summary_from_output(layout.out), "up_to_date": True}
    tell("train")
    stage_train(cfg, layout, on_progress)
    tell("plan")
    plan = stage_plan(cfg, layout)
    if any(plan.values()):
        for r in range(cfg.select.max_rounds):
            tell("generate" if r == 0 else f"generate (top-up round {r})")
            stage_generate(cfg, layout, r)
            tell("score")
            if not stage_score(cfg, layout)["shortfall"]:
                break
    tell("export")
    return stage_export(cfg, layout, before_export(layout) if before_export else None)
