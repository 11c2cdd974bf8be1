"""The per-image score and provenance columns, declared once: the score stage writes them, the manifest
carries them (a fixed value on real rows), `dataset.json` describes them, the report draws the ones marked
`histogram`, and `AugmentedImageFolder` hands the ones marked `provenance` to the training loop.

A new per-image score is one `register_column(Column(..., compute=...))`: the score stage calls `compute`
with what it has computed for the candidates (`ScoreInputs`) and writes the result beside the built-in
scores; every consumer reads the declarations when it runs, so a column registered later is carried too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

KINDS = ("float", "int", "bool", "str")
LEFT_OUT = "share"  # reject_reason of candidates the selection kept and the amount left out


@dataclass(frozen=True)
class Column:
    """name: the manifest column; kind: float, int (nullable), bool or str; real: its value on real rows;
    description: what it means (dataset.json); histogram: drawn per class in the report (range 0-1 unless
    `unbounded`); provenance: handed to the training loop with each item; compute: for columns beyond the
    built-in ones, ScoreInputs -> one value per candidate."""

    name: str
    kind: str
    real: Any
    description: str
    histogram: bool = False
    unbounded: bool = False
    provenance: bool = False
    compute: Callable[[ScoreInputs], Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name!r}: kind must be one of {KINDS}, not {self.kind!r}")

    def values(self, raw: Any, n: int) -> Any:
        """`raw` (an array of n values, or None for 'missing') as this column's manifest dtype."""
        if raw is None:
            raw = [self.real] * n
        if self.kind == "float":
            return np.asarray(raw, dtype=float)
        if self.kind == "int":
            out = pd.array([pd.NA if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else int(v)
                            for v in raw], "Int64")
            return out
        if self.kind == "bool":
            return np.asarray(raw, dtype=bool)
        return np.asarray(["" if v is None else str(v) for v in raw], dtype=object)


ScoreInputs = dict[str, Any]
"""What the score stage hands a column's `compute`: 'images' (uint8 N x C x H x W tensor), 'labels' (intended
classes), 'ext_probs' (N x K external-classifier probabilities), 'features' (the external feature space),
and the built-in per-candidate scores by column name ('aux_prob', 'realism', 'nn_distance', ...)."""

SCORE_COLUMNS: list[Column] = [
    Column("aux_prob", "float", math.nan, "probability of the intended class from the GAN's class head (or the "
           "auxiliary classifier for variants without one)", histogram=True, provenance=True),
    Column("ext_prob", "float", math.nan, "probability of the intended class from the external classifier "
           "trained on the real images only", histogram=True, provenance=True),
    Column("ext_pred", "int", None, "the external classifier's predicted class"),
    Column("realism", "float", math.nan, "sigmoid of the discriminator's logit (0.5 where there is none)"),
    Column("nn_distance", "float", math.nan, "distance to the nearest real training image in the external "
           "classifier's feature space", histogram=True, unbounded=True),
    Column("kept", "bool", True, "in the output's training rows (real rows always)"),
    Column("reject_reason", "str", "", "why a candidate was not kept ('share': kept by the selection, left out "
           "by the amount)"),
    Column("rank", "int", None, "a kept candidate's place in its class's selection order"),
    Column("mix_context", "str", "", "mixing variants: the sample id of the real image that gave the context "
           "(background)", provenance=True),
    Column("mix_content", "str", "", "mixing variants: the sample id of the real image of the intended class "
           "that gave the content", provenance=True),
    Column("mix_share", "float", math.nan, "mixing variants: the content image's share of the result (pixels "
           "for remix, area for cutmix)"),
]
BUILT_IN = frozenset(c.name for c in SCORE_COLUMNS)  # computed by the score stage itself


def register_column(column: Column) -> Column:
    """Declare a new per-image column (with its `compute`); the manifest, dataset.json, the report and
    AugmentedImageFolder carry it from then on."""
    if any(c.name == column.name for c in SCORE_COLUMNS):
        raise ValueError(f"a score column named {column.name!r} is declared already")
    if column.compute is None:
        raise ValueError(f"score column {column.name!r} needs `compute`: how the score stage fills it")
    SCORE_COLUMNS.append(column)
    return column


def unregister_column(name: str) -> None:
    if name in BUILT_IN:
        raise ValueError(f"{name!r} is a built-in column")
    SCORE_COLUMNS[:] = [c for c in SCORE_COLUMNS if c.name != name]


def score_names() -> list[str]:
    return [c.name for c in SCORE_COLUMNS]


def histogram_columns() -> list[Column]:
    return [c for c in SCORE_COLUMNS if c.histogram]


def provenance_names() -> list[str]:
    return [c.name for c in SCORE_COLUMNS if c.provenance]


def computed_columns() -> list[Column]:
    """The registered columns the score stage fills through their `compute`."""
    return [c for c in SCORE_COLUMNS if c.compute is not None]


def descriptions() -> dict[str, str]:
    """Column name -> what it means, for dataset.json."""
    return {c.name: c.description for c in SCORE_COLUMNS}
