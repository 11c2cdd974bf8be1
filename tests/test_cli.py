import json
import subprocess
import sys

import pandas as pd
import pytest
from makers import KEEP_ALL, make_image_folder, tiny_config

from augment.cli import main
from augment.data import LabeledImages
from augment.layout import RunLayout
from augment.stages import stage_load
from augment.train import train

TINY_SETS = ["--set", "image.size=8", "--set", "model.latent_dim=4", "--set", "model.width=4",
             "--set", "train.steps=2", "--set", "train.batch_size=4", "--set", "train.checkpoint_every=1",
             "--set", "score.external=logreg", *[a for kv in KEEP_ALL for a in ("--set", kv)], "--quiet"]


@pytest.fixture
def folder(tmp_path):
    return make_image_folder(tmp_path / "ds", {"cat": 5, "dog": 2}, size=8)


def test_run_end_to_end(folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--data", str(folder), "--out", str(out), *TINY_SETS]) == 0
    printed = capsys.readouterr().out
    assert "dog" in printed and "Output:" in printed and str(out) in printed
    m = pd.read_parquet(out / "manifest.parquet")
    assert m[m.kept].groupby("class_name").size().to_dict() == {"cat": 5, "dog": 5}


def test_config_file_and_sets(folder, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[balance]\nsampling_strategy = "target:4"\n')
    assert main(["run", "--data", str(folder), "--out", str(tmp_path / "o"), "--config", str(cfg), *TINY_SETS]) == 0
    meta = json.loads((tmp_path / "o" / "dataset.json").read_text())
    assert meta["counts_after"] == {"cat": 5, "dog": 4}
    assert meta["config"]["balance"]["sampling_strategy"] == "target:4"


@pytest.mark.parametrize("extra, message", [
    (["--set", "train.steps=-5"], "'train.steps' setting must be a positive integer. Got -5 instead"),
    (["--set", "train.stepz=5"], "Unknown config key 'train.stepz'"),
    (["--set", "balance.sampling_strategy=most"], "'balance.sampling_strategy' parameter must be one of"),
])
def test_bad_config_exits_2_and_writes_nothing(folder, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert main(["run", "--data", str(folder), "--out", str(out), *TINY_SETS, *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not RunLayout.for_output(out).work.exists()


def test_bad_data_exits_2_and_writes_nothing(folder, tmp_path, capsys):
    (folder / "dog" / "bad.png").write_text("not an image")
    out = tmp_path / "out"
    assert main(["run", "--data", str(folder), "--out", str(out), *TINY_SETS]) == 2
    assert "bad.png' cannot be decoded" in capsys.readouterr().err
    assert not out.exists() and not RunLayout.for_output(out).work.exists()


def test_existing_non_empty_out_exits_2_and_is_untouched(folder, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["run", "--data", str(folder), "--out", str(out), *TINY_SETS]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_interrupted_run_resumes_from_its_last_checkpoint(folder, tmp_path):
    out = tmp_path / "out"
    cfg = tiny_config("train.steps=4", *KEEP_ALL)
    layout = RunLayout.for_output(out)
    stage_load(str(folder), cfg, layout)
    train(LabeledImages.load(layout.dataset), cfg, layout.train_dir / "all", stop_after=3)  # "killed" after step 3
    args = [a.replace("train.steps=2", "train.steps=4") for a in TINY_SETS]
    assert main(["run", "--data", str(folder), "--out", str(out), *args]) == 0
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["training"]["resumed_from"] == 3 and meta["training"]["steps"] == 4


def test_console_script_reports_errors_with_exit_status_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "augment.cli", "run", "--data", str(tmp_path / "none"),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "does not exist. SPEC must be" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unexpected_failure_exits_1(folder, tmp_path, monkeypatch, capsys):
    import augment.pipeline

    monkeypatch.setattr(augment.pipeline, "stage_plan", lambda *a: 1 / 0)
    assert main(["run", "--data", str(folder), "--out", str(tmp_path / "o"), *TINY_SETS]) == 1
    assert "unexpected failure (ZeroDivisionError" in capsys.readouterr().err


def test_strategy_naming_an_unknown_class_fails_before_training(folder, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["run", "--data", str(folder), "--out", str(out), *TINY_SETS,
            "--set", 'balance.sampling_strategy={ "cow" = 9 }']
    assert main(args) == 2
    assert "names class 'cow', which is not in the dataset" in capsys.readouterr().err
    assert not RunLayout.for_output(out).work.exists()


def test_version(capsys):
    import augment

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"augment {augment.__version__}"


def test_dry_run_prints_the_plan_and_an_estimate_and_writes_nothing(folder, tmp_path, capsys):
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["run", "--data", str(folder), "--out", str(tmp_path / "out"), *TINY_SETS, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "nothing was written" in out and "training about" in out and '"steps": 2' in out
    assert "dog" in out and "generated for" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    share_auto = ["--set", 'balance.synthetic_share="auto"']
    many = make_image_folder(tmp_path / "many", {"cat": 20, "dog": 10}, size=8)  # dog holds out 2 images
    assert main(["run", "--data", str(many), "--out", str(tmp_path / "out"), *TINY_SETS, *share_auto, "--dry-run"]) == 0
    assert "Note: balance.synthetic_share = 'auto' will add no synthetic images: class(es) ['dog']" in \
        capsys.readouterr().out


def test_dry_run_refuses_what_the_run_would_refuse(folder, capsys):
    assert main(["run", "--data", str(folder), "--out", str(folder / "cat"), *TINY_SETS, "--dry-run"]) == 2


def test_a_run_that_takes_no_synthetic_images_says_why_first_and_how_to_train(tmp_path, capsys):
    folder = make_image_folder(tmp_path / "ds", {"cat": 9, "dog": 4}, size=8)
    sets = [*TINY_SETS, "--set", 'balance.synthetic_share="auto"', "--set", "balance.probe_steps=20"]
    assert main(["run", "--data", str(folder), "--out", str(tmp_path / "o"), *sets]) == 0
    printed = capsys.readouterr().out
    first = printed.lstrip().splitlines()[0]
    assert first.startswith("No synthetic images taken: too few held-out real images") and "kept 5 candidates" in first
    assert "ds.phase_samplers(n, deferred=0.75)" in printed
    report = (tmp_path / "o" / "report.md").read_text()
    assert "No synthetic images taken" in report and "Train on it:" in report
