"""`augment export` writes a subset of a run in each format; each reads back with augment's readers."""

import numpy as np
import pandas as pd
import pytest

from augment.cli import main
from augment.data import load_dataset
from augment.errors import OutputError
from augment.export import export_run


@pytest.fixture
def run(finished_run):
    return finished_run


def expected(run, synthetic_only=False, kept_only=False):
    m = pd.read_parquet(run / "manifest.parquet")
    m = m[m.kept] if kept_only else m
    return m[m.is_synthetic] if synthetic_only else m


def by_name(data):
    """{class name: sorted list of image byte strings}, to compare datasets whatever their order."""
    out = {}
    for img, lab in zip(data.images.numpy(), data.labels.numpy()):
        out.setdefault(data.class_names[lab], []).append(img.tobytes())
    return {k: sorted(v) for k, v in out.items()}


@pytest.mark.parametrize("fmt, reader", [("imagefolder", lambda p: p), ("npz", lambda p: p),
                                         ("csv", lambda p: p / "labels.csv")])
@pytest.mark.parametrize("synthetic_only, kept_only", [(False, True), (True, True), (True, False)])
def test_round_trip(run, tmp_path, fmt, reader, synthetic_only, kept_only):
    to = tmp_path / ("out.npz" if fmt == "npz" else "out")
    r = export_run(run, to, fmt, synthetic_only, kept_only)
    rows = expected(run, synthetic_only, kept_only)
    assert r["rows"] == len(rows)
    back = load_dataset(str(reader(to)))
    source = load_dataset(str(run / "images"))  # the run's own kept images, as an ImageFolder
    if kept_only and not synthetic_only:
        assert by_name(back) == by_name(source)
    assert sorted(back.counts()) == sorted(rows.groupby("class_name").size().tolist())


def test_provenance_columns_travel(run, tmp_path):
    export_run(run, tmp_path / "f", "imagefolder", synthetic_only=True, kept_only=True)
    m = pd.read_csv(tmp_path / "f" / "manifest.csv")
    assert {"run_path", "seed", "latent_index", "generator", "aux_prob", "ext_prob", "nn_distance"} <= set(m.columns)
    assert all((tmp_path / "f" / p).is_file() for p in m["path"])
    export_run(run, tmp_path / "x.npz", "npz")
    with np.load(tmp_path / "x.npz") as z:
        assert {"x", "y", "class_names", "is_synthetic", "kept", "aux_prob", "source_id"} <= set(z.files)
        assert z["x"].dtype == np.uint8 and z["is_synthetic"].dtype == bool


def test_never_replaces_an_existing_target(run, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    with pytest.raises(OutputError, match="exists"):
        export_run(run, tmp_path / "taken", "imagefolder")
    assert main(["export", "--run", str(run), "--to", str(tmp_path / "taken"), "--format", "csv"]) == 2
    assert "export never replaces" in capsys.readouterr().err
    assert main(["export", "--run", str(run), "--to", str(tmp_path / "new"), "--format", "csv", "--kept-only"]) == 0
    assert (tmp_path / "new" / "labels.csv").is_file()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
