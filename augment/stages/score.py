"""The score stage: score every candidate (class head or auxiliary classifier, discriminator realism,
external classifier, nearest real image in its feature space) and select per class."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from augment.amount import gan_training_images
from augment.atomic import write_atomic, write_json
from augment.balance import planned_by_index
from augment.cache import judge_cache, judge_key, scores_cache
from augment.columns import computed_columns
from augment.config import Config
from augment.data.labeled import LabeledImages
from augment.device import prepare_device
from augment.generate import Synthetic, latents_for
from augment.layout import RunLayout
from augment.score.candidates import all_candidate_scores, external_judge, external_key, scorer_key
from augment.score.manifold import inside_class_manifold, pass_counts
from augment.select import is_last_round, select
from augment.trained import TrainedModels
from augment.work_files import run_quota

log = logging.getLogger("augment")
REUSED = "from_cache.json"  # in the work folder's judge folder when the judge came from the cache


def stage_score(cfg: Config, layout: RunLayout, cache: str | Path | None = None) -> dict:
    """Score and select; report shortfalls. Candidates scored in an earlier round keep their scores:
    only a top-up round's new ones are scored. With `cache` (the training cache's folder), a 'cnn' judge
    fitted on the same data before is reused, and a new one is published there; so are the candidate scores
    of a run with the same GANs and judge (reused for the candidates with the same pixels and class), which
    the last round publishes. Writes scores.parquet and selection.json."""
    data = LabeledImages.load(layout.dataset)
    names = data.class_names
    models = TrainedModels(layout, prepare_device(cfg.train))
    cand = Synthetic.load(layout.candidates)
    judges = judge_cache(cache) if cache is not None and cfg.score.external == "cnn" else None
    key = judge_key(data.fingerprint, external_key(cfg)) if judges is not None else ""
    if judges is not None and not layout.external.exists() and judges.restore(key, layout.judge_dir):
        log.info("external judge reused from the cache (%s)", key[:12])
        write_json(layout.judge_dir / REUSED, {"key": key})  # after the restore: never part of the entry
    ext, ext_report, real_feats, real_nn = external_judge(cfg, layout, data, models.device)
    if judges is not None:
        judges.publish(key, layout.judge_dir)
    reused = (layout.judge_dir / REUSED).exists()
    scores = scores_cache(cache) if cache is not None else None
    scores_key = hashlib.sha256(scorer_key(cfg, layout).encode()).hexdigest() if scores is not None else ""
    if scores is not None and not layout.candidate_scores.exists() and not layout.cached_scores.exists() \
            and scores.restore(scores_key, layout.cached_scores.parent):
        log.info("candidate scores of an earlier run restored from the cache (%s)", scores_key[:12])
    scored = all_candidate_scores(cfg, layout, cand, models, ext, real_feats, names,
                                  earlier=[layout.cached_scores] if layout.cached_scores.exists() else [])
    aux_prob, realism, probs, feats, nn = (scored[k] for k in ("aux_prob", "realism", "probs", "feats", "nn"))
    labels = cand.labels.numpy()
    ext_prob = probs[np.arange(len(labels)), labels] if len(labels) else np.zeros(0)
    ext_pred = probs.argmax(1) if len(labels) else np.zeros(0, dtype=int)
    copy_threshold = float(np.percentile(real_nn, cfg.select.copy_percentile))
    on_manifold = None
    if cfg.select.manifold_k:
        on_manifold = inside_class_manifold(feats, labels, real_feats, data.labels.numpy(), cfg.select.manifold_k)
    sel = select(labels, planned_by_index(run_quota(cfg, layout, data), names), cfg.select, aux_prob=aux_prob,
                 ext_prob=ext_prob, ext_pred=ext_pred, nn_distance=nn, features=feats,
                 copy_threshold=copy_threshold, latent_index=cand.latent_index.numpy(), on_manifold=on_manifold,
                 real_features=real_feats, real_labels=data.labels.numpy())
    df = pd.DataFrame({"label": labels, "latent_index": cand.latent_index.numpy(), "round": cand.rounds.numpy(),
                       "aux_prob": aux_prob, "ext_prob": ext_prob, "ext_pred": ext_pred, "realism": realism,
                       "nn_distance": nn, "kept": sel.kept, "reject_reason": sel.reason,
                       "rank": sel.rank, **mix_provenance(cfg, data, models, cand)})
    inputs = {"images": cand.images, "labels": labels, "ext_probs": probs, "features": feats, **df.to_dict("series")}
    for column in computed_columns():
        df[column.name] = np.asarray(column.compute(inputs))
    write_atomic(layout.scores, lambda fh: df.to_parquet(fh, index=False))
    summary = {"kept": {n: int(sel.kept[labels == c].sum()) for c, n in enumerate(names)},
               "shortfall": {names[c]: k for c, k in sel.shortfall.items()},
               "rejected_by": {r: int((sel.reason == r).sum()) for r in np.unique(sel.reason) if r},
               "copy_threshold": copy_threshold, "external": {**ext_report.to_dict(), "from_cache": reused},
               "scores_from_cache": int(scored["from_cache"].sum())}
    if on_manifold is not None:
        summary["manifold"] = pass_counts(on_manifold, labels, names)
    write_json(layout.selection, summary)
    if scores is not None and len(cand) and is_last_round(sel.shortfall, int(cand.rounds.max()), cfg.select):
        scores.publish(scores_key, layout.candidate_scores)  # the last round's: every candidate of the run
    return summary


def mix_provenance(cfg: Config, data: LabeledImages, models: TrainedModels, cand: Synthetic) -> dict[str, np.ndarray]:
    """The mix_* columns (augment.columns) for candidates of a mixing variant: both parents' sample ids and
    the content's share, recomputed from each candidate's latent; nothing for other variants."""
    if not len(cand):
        return {}
    data = gan_training_images(data, cfg.balance.synthetic_share, cfg.seed)  # the images the generator holds
    gan = models.gan_for(data.class_names[int(cand.labels[0])])
    if not hasattr(gan.generator, "provenance"):
        return {}
    z = latents_for(cand.seed, cand.labels, cand.latent_index, gan.latent_dim).to(models.device)
    with torch.inference_mode():
        p = gan.generator.provenance(z, cand.labels.to(models.device))
    ids = np.asarray(data.sample_ids, dtype=object)
    return {"mix_context": ids[p["context_row"].cpu().numpy()], "mix_content": ids[p["content_row"].cpu().numpy()],
            "mix_share": p["share"].float().cpu().numpy().astype(np.float64)}

