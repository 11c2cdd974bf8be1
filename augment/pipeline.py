"""The pipeline as stage functions over one run layout: load, train, generate, score, export.

Each stage reads its inputs from and writes its outputs to the run's work folder (a hidden
sibling of the output folder), and returns a small JSON-able summary. The CLI calls them
in order through `run_pipeline`; the Prefect flow calls each as a task. A rerun with the
same inputs and config picks up where an interrupted one stopped (training resumes from its
last checkpoint); the output folder appears only when complete.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from augment import __version__
from augment.balance import plan_synthetic
from augment.checkpoint import atomic_write_bytes, file_sha256
from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.data.readers import load_dataset
from augment.errors import ConfigError
from augment.export import check_output_target, write_dataset
from augment.generate import Synthetic, generate, load_gan
from augment.provenance import now_iso, package_versions
from augment.report import write_report
from augment.score.gan_scores import gan_scores
from augment.score.probe import PixelProbe
from augment.select import select
from augment.train import ProgressFn, TrainResult, resolve_device, train, training_signature

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
    """Read and validate the dataset, check the output target, and set up (or reuse) the work folder."""
    check_output_target(layout.out, cfg.out.overwrite)
    data = source if isinstance(source, LabeledImages) else load_dataset(source, cfg.image, cfg.seed)
    plan_synthetic(data.counts(), data.class_names, cfg.balance.sampling_strategy)  # fails before any write
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
    _write_json(layout.run_json, run)
    return {"source": data.source, "fingerprint": data.fingerprint, "num_images": len(data),
            "class_names": data.class_names, "counts": data.counts(), "image_size": data.size,
            "channels": data.channels, "notes": data.notes}


def stage_train(cfg: Config, layout: RunLayout, on_progress: ProgressFn | None = None) -> dict:
    """Train or resume the GAN; the best checkpoint is chosen by the pixel-probe quality check."""
    data = LabeledImages.load(layout.dataset)
    probe = PixelProbe(data, seed=cfg.seed)
    result = train(data, cfg, layout.train_dir, on_progress=on_progress, quality=probe.quality_fn())
    summary = asdict(result)
    _write_json(layout.train_dir / "result.json", summary)
    return summary


def stage_plan(cfg: Config, layout: RunLayout) -> dict[str, int]:
    data = LabeledImages.load(layout.dataset)
    plan = plan_synthetic(data.counts(), data.class_names, cfg.balance.sampling_strategy)
    _write_json(layout.plan, plan)
    return plan


def _need_by_index(plan: dict[str, int], class_names: list[str]) -> dict[int, int]:
    return {class_names.index(n): k for n, k in plan.items() if k > 0}


def stage_generate(cfg: Config, layout: RunLayout, round_index: int = 0) -> dict:
    """Generate candidates: oversample x plan in round 0; later rounds top up the classes left short."""
    plan = _read_json(layout.plan)
    train_result = TrainResult(**_read_json(layout.train_dir / "result.json"))
    device = resolve_device(cfg.train.device)
    gan = load_gan(train_result.best_checkpoint, device)
    names = gan.class_names
    need = _need_by_index(plan, names)
    if round_index == 0:
        todo = {c: math.ceil(n * cfg.select.oversample) for c, n in need.items()}
        existing = None
    else:
        existing = Synthetic.load(layout.candidates)
        short = _read_json(layout.work / "selection.json")["shortfall"]
        todo = {names.index(n): math.ceil(k * cfg.select.oversample * 2 ** round_index) for n, k in short.items()}
    start = {}
    if existing is not None:
        for c in todo:
            have = existing.latent_index[existing.labels == c]
            start[c] = int(have.max()) + 1 if len(have) else 0
    new = generate(gan, todo, cfg.seed, start, round_index, device=device)
    allc = new if existing is None else existing.concat(new)
    allc.save(layout.candidates)
    return {"round": round_index, "generated": {names[c]: n for c, n in todo.items()}, "candidates": len(allc)}


def stage_score(cfg: Config, layout: RunLayout) -> dict:
    """Score every candidate with the GAN's discriminator and select per class; report shortfalls."""
    plan = _read_json(layout.plan)
    train_result = TrainResult(**_read_json(layout.train_dir / "result.json"))
    device = resolve_device(cfg.train.device)
    gan = load_gan(train_result.best_checkpoint, device)
    cand = Synthetic.load(layout.candidates)
    scores = gan_scores(gan, cand.images, cand.labels, device=device)
    labels = cand.labels.numpy()
    kept, short = select(labels, scores["aux_prob"], _need_by_index(plan, gan.class_names),
                         cfg.select.min_aux_prob, cand.latent_index.numpy())
    df = pd.DataFrame({"label": labels, "latent_index": cand.latent_index.numpy(), "round": cand.rounds.numpy(),
                       "aux_prob": scores["aux_prob"], "realism": scores["realism"], "kept": kept})
    tmp = layout.scores.with_name(layout.scores.name + ".tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(layout.scores)
    summary = {"kept": {n: int(kept[labels == c].sum()) for c, n in enumerate(gan.class_names)},
               "shortfall": {gan.class_names[c]: k for c, k in short.items()}}
    _write_json(layout.work / "selection.json", summary)
    return summary


def stage_export(cfg: Config, layout: RunLayout, extra_sections: list[str] | None = None) -> dict:
    """Write the output folder atomically, then remove the work folder. Returns the summary."""
    data = LabeledImages.load(layout.dataset)
    plan = _read_json(layout.plan)
    train_result = TrainResult(**_read_json(layout.train_dir / "result.json"))
    cand = Synthetic.load(layout.candidates) if layout.candidates.exists() else \
        Synthetic.empty(data.channels, data.size, cfg.seed)
    scores = pd.read_parquet(layout.scores) if layout.scores.exists() else \
        pd.DataFrame({"aux_prob": [], "realism": [], "kept": []})
    selection = _read_json(layout.work / "selection.json") if (layout.work / "selection.json").exists() else \
        {"shortfall": {}}
    best = Path(train_result.best_checkpoint)
    sha = file_sha256(best)
    names = data.class_names
    labels = cand.labels.numpy()
    kept = scores["kept"].to_numpy(bool)
    before = data.counts_by_name()
    kept_by = {n: int(kept[labels == c].sum()) for c, n in enumerate(names)}
    meta = {
        "augment_version": __version__, "created_at": now_iso(), "source": data.source, "seed": cfg.seed,
        "dataset_fingerprint": data.fingerprint, "class_names": names,
        "image": {"size": data.size, "channels": data.channels},
        "counts_before": before, "plan": plan, "kept": kept_by,
        "rejected": {n: int((~kept[labels == c]).sum()) for c, n in enumerate(names)},
        "counts_after": {n: before[n] + kept_by[n] for n in names},
        "shortfall": selection["shortfall"], "normalisation": data.notes,
        "scorers": {"aux_prob": f"{cfg.model.variant} discriminator's auxiliary class head",
                    "realism": "sigmoid of the discriminator's adversarial logit"},
        "checkpoint": {"path": "train/checkpoints/best.pt", "sha256": sha, "step": train_result.best_step,
                       "quality_score": train_result.best_score, "selected_by": "pixel-probe quality check"},
        "training": {"steps": train_result.step, "seconds": train_result.seconds, "device": train_result.device,
                     "resumed_from": train_result.resumed_from, "problems": train_result.problems},
        "config": cfg.to_dict(), "package_versions": package_versions(),
    }
    for n, k in selection["shortfall"].items():
        log.warning("class %r: %d synthetic images short of the plan after %d rounds", n, k, cfg.select.max_rounds)
    manifest = write_dataset(
        layout.out, data, cand, scores, meta, generator=f"{cfg.model.variant}@{sha[:12]}",
        train_dir=layout.train_dir, overwrite=cfg.out.overwrite,
        extras=lambda tmp, _m: write_report(tmp, meta, extra_sections))
    shutil.rmtree(layout.work, ignore_errors=True)
    return {"out": str(layout.out), "manifest_rows": len(manifest), "class_names": names,
            "counts_before": before, "plan": plan, "kept": kept_by, "rejected": meta["rejected"],
            "counts_after": meta["counts_after"], "shortfall": selection["shortfall"],
            "checkpoint_step": train_result.best_step, "train_seconds": train_result.seconds}


def run_pipeline(source: str | LabeledImages, cfg: Config, out: str | Path,
                 on_progress: ProgressFn | None = None, on_stage: Callable[[str], None] | None = None,
                 before_export: Callable[[RunLayout], list[str]] | None = None) -> dict:
    """Every stage in order; `on_stage(name)` is told as each one starts. `before_export(layout)` may
    return extra markdown sections for the report (the demo's downstream check)."""
    layout = RunLayout.for_output(out)
    tell = on_stage or (lambda name: None)
    tell("load")
    stage_load(source, cfg, layout)
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
