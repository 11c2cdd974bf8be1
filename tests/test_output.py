import json
import os

import pandas as pd
import pytest
import torch
from makers import KEEP_ALL, make_image_folder, make_manifest, tiny_config

from augment import output, png_files
from augment.checkpoint import file_sha256
from augment.data import load_dataset
from augment.errors import OutputError
from augment.pipeline import run_pipeline
from augment.precision import resolve_precision

CFG = KEEP_ALL


@pytest.fixture
def folder(tmp_path):
    return make_image_folder(tmp_path / "ds", {"cat": 6, "dog": 3}, size=8)


def siblings(path):
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}"))


def test_output_layout_manifest_and_dataset_json(folder, tmp_path):
    out = tmp_path / "out"
    summary = run_pipeline(str(folder), tiny_config(*CFG), out)
    assert summary["counts_after"] == {"cat": 6, "dog": 6} and summary["kept"] == {"cat": 0, "dog": 3}
    assert sorted(os.listdir(out)) == ["dataset.json", "figures", "gan", "images", "manifest.csv", "manifest.parquet",
                                       "quality.csv", "rejected", "report.html", "report.md"]
    m = pd.read_parquet(out / "manifest.parquet")
    for col in ("path", "label", "class_name", "is_synthetic", "source_id", "seed", "aux_prob", "kept", "realism",
                "latent_index", "generator", "split"):
        assert col in m.columns
    assert len(m) == 9 + 6  # real + every synthetic candidate (3 planned x oversample 2)
    assert all((out / p).is_file() for p in m["path"])
    kept_syn = m[m.is_synthetic & m.kept]
    assert len(kept_syn) == 3 and all(p.startswith("images/dog/syn-") for p in kept_syn.path)
    assert all(p.startswith("rejected/dog/") for p in m[m.is_synthetic & ~m.kept].path)
    assert m[~m.is_synthetic].source_id.str.len().gt(0).all()
    assert pd.read_csv(out / "manifest.csv").shape == m.shape
    assert len(list((out / "images" / "dog").iterdir())) == 6
    meta = json.loads((out / "dataset.json").read_text())
    for key in ("counts_before", "counts_after", "plan", "config", "dataset_fingerprint", "checkpoint",
                "package_versions", "created_at", "seed", "normalisation", "shortfall"):
        assert key in meta
    assert meta["dataset_fingerprint"] == load_dataset(str(folder)).fingerprint
    assert meta["checkpoint"]["sha256"] == file_sha256(out / meta["checkpoint"]["path"])
    assert meta["checkpoint"]["spectral_norm"] is True  # what 'auto' resolved to for acgan, read from the weights
    assert meta["package_versions"]["torch"]
    assert meta["training"]["precision"] == resolve_precision(torch.device("cpu"))  # bf16 on an AMX CPU, else fp32
    run = out / "gan" / "all"  # conditional variants train one model for all classes
    assert (run / "stats.jsonl").is_file() and list((run / "samples").glob("grid-*.png"))
    assert (run / "samples.gif").is_file() and (run / "curves.png").is_file()
    assert (out / "figures" / "class_balance.png").is_file()
    assert "| dog | 3 | 3 | 3 |" in (out / "report.md").read_text()
    assert siblings(out) == []  # no work or temp folder left beside it


def test_rerun_with_same_inputs_gives_the_same_manifest_rows(folder, tmp_path):
    run_pipeline(str(folder), tiny_config(*CFG), tmp_path / "one")
    run_pipeline(str(folder), tiny_config(*CFG), tmp_path / "two")
    a = pd.read_parquet(tmp_path / "one" / "manifest.parquet")
    b = pd.read_parquet(tmp_path / "two" / "manifest.parquet")
    pd.testing.assert_frame_equal(a, b)


def test_failure_mid_export_leaves_no_output_folder(folder, tmp_path, monkeypatch):
    calls = {"n": 0}
    real_write = png_files.write_png

    def flaky(path, image):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full (injected)")
        real_write(path, image)

    monkeypatch.setattr(png_files, "write_png", flaky)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="injected"):
        run_pipeline(str(folder), tiny_config(*CFG), out)
    assert not out.exists()
    assert not any(n.startswith(".out.tmp-") for n in siblings(out))
    # the work folder survives, so the rerun reuses the finished training instead of retraining
    trained = json.loads((tmp_path / ".out.augment-work" / "train" / "result.json").read_text())
    monkeypatch.setattr(png_files, "write_png", real_write)
    summary = run_pipeline(str(folder), tiny_config(*CFG), out)
    assert out.is_dir() and summary["counts_after"]["dog"] == 6
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["training"]["seconds"] == trained["seconds"] and meta["training"]["key"] == trained["key"]


def test_overwrite_replaces_only_when_the_new_dataset_is_complete(folder, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("precious")
    with pytest.raises(OutputError, match="exists and is not empty.*out.overwrite=true"):
        run_pipeline(str(folder), tiny_config(*CFG), out)
    monkeypatch.setattr(output, "build_manifest", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        run_pipeline(str(folder), tiny_config(*CFG, "out.overwrite=true"), out)
    assert (out / "mine.txt").read_text() == "precious"
    monkeypatch.undo()
    run_pipeline(str(folder), tiny_config(*CFG, "out.overwrite=true"), out)
    assert not (out / "mine.txt").exists() and (out / "manifest.parquet").exists()


def test_labels_that_would_escape_the_output_stay_inside(tmp_path):
    rows = [(f"i{i}.png", lab) for i, lab in enumerate(["../x", "../x", "a/b", "a/b", ".", ".", "ok", "ok", "ok"])]
    m = make_manifest(tmp_path / "src", rows)
    out = tmp_path / "out"
    run_pipeline(str(m), tiny_config(*CFG), out)
    manifest = pd.read_parquet(out / "manifest.parquet")
    root = out.resolve()
    for p in manifest.path:
        resolved = (out / p).resolve()
        assert resolved.is_relative_to(root) and resolved.is_file()
    assert set(manifest.class_name) == {"../x", "a/b", ".", "ok"}
    assert sorted(os.listdir(out / "images")) == ["_x", "a_b", "class_0", "metadata.csv", "ok"]
    assert not (tmp_path / "x").exists()
    assert json.loads((out / "dataset.json").read_text())["class_dirs"]["../x"] == "_x"


def test_classes_that_cannot_be_filled_are_reported_short(folder, tmp_path):
    summary = run_pipeline(str(folder), tiny_config("select.min_aux_prob=1.0", "select.max_rounds=2"), tmp_path / "o")
    assert summary["shortfall"] == {"dog": 3} and summary["counts_after"]["dog"] == 3
    meta = json.loads((tmp_path / "o" / "dataset.json").read_text())
    assert meta["shortfall"] == {"dog": 3}
    m = pd.read_parquet(tmp_path / "o" / "manifest.parquet")
    assert sorted(m[m.is_synthetic]["round"].unique().tolist()) == [0, 1]  # a top-up round was tried
    assert "3 images short" in (tmp_path / "o" / "report.md").read_text()


def test_stale_temp_folders_of_dead_exports_are_removed(folder, tmp_path):
    stale = tmp_path / ".out.tmp-999999-deadbeef"
    stale.mkdir()
    (stale / "half.png").write_bytes(b"x")
    run_pipeline(str(folder), tiny_config(*CFG), tmp_path / "out")
    assert not stale.exists()


@pytest.mark.gpu
def test_a_run_on_cuda_trains_scores_and_exports_the_same_layout(folder, tmp_path):
    out = tmp_path / "out"
    cfg = tiny_config(*CFG, "train.device=cuda", "score.external=cnn", "score.external_steps=5")
    summary = run_pipeline(str(folder), cfg, out)
    assert summary["counts_after"] == {"cat": 6, "dog": 6}
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["training"]["device"].startswith("cuda")
    m = pd.read_parquet(out / "manifest.parquet")
    syn = m[m.is_synthetic]
    assert syn[["aux_prob", "ext_prob", "realism", "nn_distance"]].notna().all().all()
    assert all((out / p).is_file() for p in m["path"])


def test_every_run_records_where_its_time_went(finished_run):
    """Per-stage wall seconds in dataset.json and the report, so a scheduled run shows its cost."""
    seconds = json.loads((finished_run / "dataset.json").read_text())["stage_seconds"]
    assert list(seconds) == ["load", "train", "plan", "generate", "score", "amount", "export"]
    assert all(v >= 0 for v in seconds.values()) and seconds["train"] > 0 and seconds["export"] > 0
    assert "Time per stage (s): load" in (finished_run / "report.md").read_text()
