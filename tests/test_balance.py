import pytest

from augment.balance import plan_synthetic
from augment.errors import ConfigError

NAMES = ["a", "b", "c"]
COUNTS = [10, 4, 1]


@pytest.mark.parametrize("strategy, expected", [
    ("auto", {"a": 0, "b": 6, "c": 9}),
    ("not majority", {"a": 0, "b": 6, "c": 9}),
    ("match-majority", {"a": 0, "b": 6, "c": 9}),
    ("all", {"a": 0, "b": 6, "c": 9}),
    ("minority", {"a": 0, "b": 0, "c": 9}),
    ("not minority", {"a": 0, "b": 6, "c": 0}),
    ("target:8", {"a": 0, "b": 4, "c": 7}),
    ("ratio:0.5", {"a": 0, "b": 1, "c": 4}),
    ("ratio:2", {"a": 10, "b": 16, "c": 19}),
    ({"b": 5, "c": 3}, {"a": 0, "b": 1, "c": 2}),
])
def test_strategies_give_per_class_counts(strategy, expected):
    assert plan_synthetic(COUNTS, NAMES, strategy) == expected


def test_table_accepts_class_indices_and_callables():
    assert plan_synthetic(COUNTS, NAMES, {2: 4}) == {"a": 0, "b": 0, "c": 3}
    assert plan_synthetic(COUNTS, NAMES, lambda y: {"c": int((y == "a").sum())}) == {"a": 0, "b": 0, "c": 9}


def test_numeric_class_names_match_toml_string_keys():
    assert plan_synthetic([5, 2], ["0", "1"], {"1": 5}) == {"0": 0, "1": 3}


@pytest.mark.parametrize("strategy, message", [
    ("most", r"'balance\.sampling_strategy' parameter must be one of 'auto'.*Got 'most' instead"),
    ("target:x", r"Got 'target:x' instead"),
    ("target:0", r"Got 'target:0' instead"),
    ("ratio:-1", r"Got 'ratio:-1' instead"),
    (3.5, r"Got 3\.5 instead"),
    ({"z": 3}, r"names class 'z', which is not in the dataset; its classes are \['a', 'b', 'c'\]"),
    ({"a": 5}, r"asks for 5 images of class 'a', which already has 10; over-sampling cannot remove images"),
    ({"b": -1}, r"non-negative integer count for class 'b'"),
])
def test_bad_strategies_name_the_parameter(strategy, message):
    with pytest.raises(ConfigError, match=message):
        plan_synthetic(COUNTS, NAMES, strategy)
