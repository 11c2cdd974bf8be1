"""Balancing plan: imbalanced-learn's `sampling_strategy` vocabulary -> synthetic images per class.

Accepted, as in imbalanced-learn's over-samplers: 'auto' (= 'not majority'), 'not majority',
'minority', 'not minority', 'all', a {class: count} table of desired totals, or a callable of
the labels returning such a table. Also 'target:N' (every class up to N) and 'ratio:R'
(every class up to R times the majority), and 'match-majority' as an alias of 'auto'.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from augment.errors import ConfigError

KEYWORDS = ("auto", "not majority", "minority", "not minority", "all", "match-majority")
ACCEPTS = ("'auto', 'not majority', 'minority', 'not minority', 'all', 'target:N', 'ratio:R', "
           "a {class: count} table or a callable")


def _bad(strategy: Any) -> ConfigError:
    return ConfigError(f"The 'balance.sampling_strategy' parameter must be one of {ACCEPTS}. "
                       f"Got {strategy!r} instead.")


def check_strategy(strategy: Any) -> None:
    """Validate what can be checked without the dataset (keywords, N, R); tables are checked per dataset."""
    if isinstance(strategy, Mapping) or callable(strategy):
        return
    plan_synthetic([2, 1], ["_a", "_b"], strategy)


def plan_synthetic(counts: Sequence[int], class_names: Sequence[str], strategy: Any) -> dict[str, int]:
    """How many synthetic images each class gets (by class name), so that its total meets the strategy."""
    counts = [int(c) for c in counts]
    names = [str(n) for n in class_names]
    if len(counts) != len(names) or not counts:
        raise ValueError("counts and class_names must be non-empty and of equal length")
    n_max, n_min = max(counts), min(counts)
    targets: dict[str, int]
    if callable(strategy):
        labels = np.repeat(np.arange(len(counts)), counts)
        strategy = strategy(np.asarray(names, dtype=object)[labels])
    if isinstance(strategy, Mapping):
        targets = _targets_from_table(strategy, counts, names)
    elif isinstance(strategy, str):
        s = strategy.strip()
        if s in ("auto", "not majority", "match-majority"):
            targets = {n: n_max for n, c in zip(names, counts) if c != n_max}
        elif s == "all":
            targets = {n: n_max for n in names}
        elif s == "minority":
            targets = {n: n_max for n, c in zip(names, counts) if c == n_min}
        elif s == "not minority":
            targets = {n: n_max for n, c in zip(names, counts) if c != n_min}
        elif s.startswith("target:"):
            n = _parse_number(s[7:], int, strategy)
            if n < 1:
                raise _bad(strategy)
            targets = {name: n for name in names}
        elif s.startswith("ratio:"):
            r = _parse_number(s[6:], float, strategy)
            if not 0 < r <= 100:
                raise _bad(strategy)
            targets = {name: math.ceil(r * n_max) for name in names}
        else:
            raise _bad(strategy)
    else:
        raise _bad(strategy)
    by_name = dict(zip(names, counts))
    return {n: max(0, targets.get(n, c) - c) for n, c in by_name.items()}


def _parse_number(text: str, kind: Callable, original: Any) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise _bad(original) from None


def _targets_from_table(table: Mapping, counts: list[int], names: list[str]) -> dict[str, int]:
    """{class: desired total}; keys are class names (or class indices); totals may not shrink a class."""
    out: dict[str, int] = {}
    for key, want in table.items():
        name = str(key)
        if name not in names:
            if isinstance(key, (int, np.integer)) and 0 <= int(key) < len(names):
                name = names[int(key)]
            else:
                raise ConfigError(f"'balance.sampling_strategy' names class {key!r}, which is not in the dataset; "
                                  f"its classes are {names}.")
        if isinstance(want, bool) or not isinstance(want, (int, np.integer)) or want < 0:
            raise ConfigError(f"'balance.sampling_strategy' must give a non-negative integer count for class "
                              f"{key!r}. Got {want!r} instead.")
        have = counts[names.index(name)]
        if want < have:
            raise ConfigError(f"'balance.sampling_strategy' asks for {want} images of class {name!r}, which already "
                              f"has {have}; over-sampling cannot remove images. Ask for at least {have}.")
        out[name] = int(want)
    return out


def planned_by_index(plan: dict[str, int], class_names: list[str]) -> dict[int, int]:
    """The plan keyed by class index, for the classes that get synthetic images."""
    return {class_names.index(n): k for n, k in plan.items() if k > 0}
