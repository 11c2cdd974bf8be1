"""The pipeline's stages, one module each: plain functions over a `RunLayout` that read their inputs
from the run's work folder, write their outputs there, and return small JSON-able summaries."""

from augment.stages.amount import stage_amount
from augment.stages.export import stage_export, summary_from_output
from augment.stages.generate import stage_generate
from augment.stages.load import stage_load, stage_load_into_root, stage_plan
from augment.stages.score import stage_score
from augment.stages.train import stage_train

__all__ = ["stage_amount", "stage_export", "stage_generate", "stage_load", "stage_load_into_root", "stage_plan",
           "stage_score", "stage_train", "summary_from_output"]
