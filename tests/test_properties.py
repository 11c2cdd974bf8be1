"""Property-based tests (hypothesis) of the name sanitiser, the balancing plan and the readers."""

import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from augment.balance import plan_synthetic
from augment.data import load_dataset
from augment.data.names import class_dirs, safe_component
from augment.errors import ConfigError, DatasetError

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(st.text(max_size=300))
def test_any_name_becomes_one_safe_component(name):
    s = safe_component(name)
    assert s and s not in (".", "..") and not s.startswith(".")
    assert "/" not in s and "\\" not in s and not any(ord(ch) < 32 for ch in s)
    assert len(s.encode()) <= 80


@FAST
@given(st.lists(st.text(max_size=40), min_size=1, max_size=20))
def test_class_dirs_are_unique(names):
    dirs = class_dirs(names)
    assert len({d.lower() for d in dirs}) == len(names)


STRATEGIES = st.one_of(st.sampled_from(["auto", "not majority", "minority", "not minority", "all"]),
                       st.integers(1, 500).map(lambda n: f"target:{n}"),
                       st.floats(0.01, 5).map(lambda r: f"ratio:{r:.3f}"))


@FAST
@given(st.lists(st.integers(1, 1000), min_size=1, max_size=12), STRATEGIES)
def test_plan_never_removes_and_meets_its_target(counts, strategy):
    names = [f"c{i}" for i in range(len(counts))]
    plan = plan_synthetic(counts, names, strategy)
    assert set(plan) == set(names) and all(v >= 0 for v in plan.values())
    after = [c + plan[n] for n, c in zip(names, counts)]
    if strategy in ("auto", "not majority", "all"):
        assert len(set(after)) == 1 and after[0] == max(counts)
    if strategy.startswith("target:"):
        n = int(strategy[7:])
        assert all(a == max(n, c) for a, c in zip(after, counts))


@FAST
@given(st.dictionaries(st.sampled_from(["c0", "c1", "c2"]), st.integers(-5, 2000)))
def test_plan_tables_are_accepted_or_refused_by_name(table):
    counts = [100, 50, 10]
    try:
        plan = plan_synthetic(counts, ["c0", "c1", "c2"], table)
    except ConfigError as exc:
        assert "balance.sampling_strategy" in str(exc)
    else:
        for n, want in table.items():
            assert counts[int(n[1])] + plan[n] == want


@FAST
@given(n=st.integers(0, 12), h=st.integers(1, 70), w=st.integers(1, 70), c=st.sampled_from([None, 1, 2, 3, 4]),
       dtype=st.sampled_from(["uint8", "float32", "int64"]), classes=st.integers(1, 4), extra_y=st.integers(-1, 1))
def test_npz_reader_loads_or_says_why(tmp_path_factory, n, h, w, c, dtype, classes, extra_y):
    rng = np.random.default_rng(n * 7 + h)
    shape = (n, h, w) if c is None else (n, h, w, c)
    x = rng.integers(0, 255, shape).astype(dtype)
    y = rng.integers(0, classes, max(0, n + extra_y))
    path = tmp_path_factory.mktemp("npz") / "d.npz"
    np.savez(path, x=x, y=y)
    try:
        data = load_dataset(str(path))
    except DatasetError:
        return
    assert data.images.dtype.is_floating_point is False and data.images.shape[0] == n
    assert 8 <= data.size <= 64 and data.channels in (1, 3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_manifest_reader_fuzz_never_crashes(tmp_path_factory, blob):
    folder = tmp_path_factory.mktemp("m")
    (folder / "m.csv").write_bytes(blob)
    try:
        load_dataset(str(folder / "m.csv"))
    except DatasetError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600))
def test_npz_reader_fuzz_never_crashes(tmp_path_factory, blob):
    folder = tmp_path_factory.mktemp("z")
    buf = io.BytesIO()
    np.savez(buf, x=np.zeros((2, 8, 8), np.uint8), y=np.array([0, 1]))
    data = buf.getvalue()
    cut = len(blob) % max(1, len(data))
    (folder / "d.npz").write_bytes(data[:cut] + blob)  # a valid prefix, then garbage
    try:
        load_dataset(str(folder / "d.npz"))
    except DatasetError:
        pass
