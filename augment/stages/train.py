"""The train stage: the GAN (one per class that needs images, for unconditional variants), plus an
auxiliary classifier where the variant has no class head; best checkpoints chosen by the pixel probe."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch

from augment.amount import gan_training_images
from augment.atomic import read_json, write_json
from augment.cache import TrainingCache, training_key
from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.device import resolve_device
from augment.latent_smote import train_latent_smote
from augment.layout import RunLayout
from augment.mixing_trainer import train_mixing
from augment.models import get_variant
from augment.report import write_training_figures
from augment.score.aux_classifier import DESCRIPTION as AUX_DESCRIPTION
from augment.score.aux_classifier import train_aux_classifier
from augment.score.probe import PixelProbe
from augment.train import train
from augment.train_state import ProgressFn, TrainResult

log = logging.getLogger("augment")


@dataclasses.dataclass
class TrainingJob:
    """One GAN to train: its folder name, its data, and which of the run's classes it serves."""

    name: str
    data: LabeledImages
    label_map: list[int] | None  # the probe's class for each of the job's labels (None: the same)
    classes: list[int]


def stage_train(cfg: Config, layout: RunLayout, on_progress: ProgressFn | None = None,
                cache: str | Path | None = None) -> dict:
    """Train or resume every GAN the run needs (and the auxiliary classifier). With `cache` (a folder),
    a finished training of the same data and settings is reused, and a new one is published there.
    Returns the summary written to the work folder's train/result.json."""
    data = gan_training_images(LabeledImages.load(layout.dataset), cfg.balance.synthetic_share, cfg.seed)
    store = TrainingCache(cache) if cache is not None else None
    key = training_key(data.fingerprint, cfg)
    done = layout.train_result
    if not done.exists() and store is not None and store.restore(key, layout.train_dir):
        log.info("training reused from the cache (%s)", key[:12])
        write_json(done, {**read_json(done), "from_cache": True})
    if done.exists():
        summary = read_json(done)
        if summary.get("key") == key:
            return summary
        done.unlink()  # other settings (e.g. more steps): train() resumes from the last checkpoint
    variant = get_variant(cfg.model.variant)
    jobs = training_jobs(data, read_json(layout.plan), variant.conditional)
    aux_path, aux_seconds = None, 0.0
    if not variant.has_class_head:
        # Trained first, so that its time comes out of train.max_seconds like the GAN's own.
        aux_seconds = train_aux_classifier(data, cfg, layout.aux_classifier)
        aux_path = layout.aux_classifier.name
    job_cfg = _share_of_budget(cfg, aux_seconds, len(jobs))
    probe = PixelProbe(data, seed=cfg.seed)
    runs, class_runs = {}, {}
    for i, job in enumerate(jobs):
        result = _train_with_smaller_batches_on_oom(job.data, job_cfg, layout.train_dir / job.name,
                                                    _job_progress(on_progress, i, len(jobs)),
                                                    probe.quality_fn(label_map=job.label_map))
        write_training_figures(layout.train_dir / job.name)
        runs[job.name] = _relative_paths(result, layout.train_dir)
        class_runs.update({data.class_names[c]: job.name for c in job.classes})
    summary = {"key": key, "from_cache": False, "variant": variant.name, "runs": runs, "class_runs": class_runs,
               "aux_classifier": aux_path,
               "aux_scorer": f"{variant.name} discriminator's auxiliary class head" if aux_path is None
               else AUX_DESCRIPTION,
               "seconds": round(aux_seconds + sum(r["seconds"] for r in runs.values()), 3),
               "aux_classifier_seconds": round(aux_seconds, 3),
               "device": next(iter(runs.values()))["device"] if runs else str(resolve_device(cfg.train.device))}
    write_json(done, summary)
    if store is not None:
        store.publish(key, layout.train_dir)
    return summary


def training_jobs(data: LabeledImages, plan: dict[str, int], conditional: bool) -> list[TrainingJob]:
    """One job over all classes for a conditional variant; else one per class the plan gives images."""
    if conditional:
        return [TrainingJob("all", data, None, list(range(data.num_classes)))]
    wanted = [c for c, n in enumerate(data.class_names) if plan[n] > 0]
    return [TrainingJob(f"class-{c:03d}", _single_class(data, c), [c], [c]) for c in wanted]


def _single_class(data: LabeledImages, c: int) -> LabeledImages:
    idx = torch.nonzero(data.labels == c).squeeze(1)
    return LabeledImages(data.images[idx].clone(), torch.zeros(len(idx), dtype=torch.long), [data.class_names[c]],
                         [data.sample_ids[i] for i in idx.tolist()], data.source, dict(data.notes))


def _job_progress(on_progress: ProgressFn | None, index: int, jobs: int) -> ProgressFn | None:
    """Job `index`'s steps as a share of all jobs' steps."""
    if on_progress is None:
        return None
    return lambda step, total, row: on_progress(index * total + step, jobs * total, row)


def _share_of_budget(cfg: Config, spent: float, jobs: int) -> Config:
    """train.max_seconds bounds the whole training stage: what the auxiliary classifier spent comes off
    it, and the rest is shared equally by the GANs trained (one per class for unconditional variants)."""
    budget = cfg.train.max_seconds
    if not budget or jobs == 0:
        return cfg
    share = max(budget - spent, 0.0) / jobs
    # 0 would mean "no limit": a spent budget still leaves each GAN its first step and checkpoint.
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, max_seconds=max(share, 1e-3)))


TRAINERS = {"gan": train, "autoencoder": train_latent_smote, "mixing": train_mixing}  # VariantRules.trainer -> it


def _train_with_smaller_batches_on_oom(data: LabeledImages, cfg: Config, run_dir: Path, progress,
                                       quality) -> TrainResult:
    """Out of device memory: halve train.batch_size (down to 2), log it, and resume from the last checkpoint."""
    trainer = TRAINERS[get_variant(cfg.model.variant).trainer]
    while True:
        try:
            return trainer(data, cfg, run_dir, on_progress=progress, quality=quality)
        except torch.OutOfMemoryError:
            if cfg.train.batch_size <= 2:
                raise
            smaller = max(2, cfg.train.batch_size // 2)
            log.warning("out of device memory at train.batch_size = %d; retrying with %d from the last checkpoint",
                        cfg.train.batch_size, smaller)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, batch_size=smaller))


def _relative_paths(result: TrainResult, root: Path) -> dict:
    """Paths in result.json are relative to the training folder, which moves (work folder, output, cache)."""
    summary = dataclasses.asdict(result)
    for k in ("run_dir", "best_checkpoint", "last_checkpoint"):
        summary[k] = Path(summary[k]).relative_to(root).as_posix()
    return summary
