"""One guard, every face: `augment.run_checks.guarded_lock` / `check_place` refuse the same bad places to
write through `augment run` (and --dry-run), `augment export` and `GANOverSampler.save`, before anything
is written. (The flow's face: tests/flows/test_augment_dataset.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from makers import make_image_folder, make_read_only

import augment
from augment.cli import main
from augment.errors import OutputError
from augment.export import export_run

TINY_SETS = ["--set", "image.size=8", "--set", "model.latent_dim=4", "--set", "model.width=4",
             "--set", "train.steps=2", "--set", "train.batch_size=4", "--set", "score.external=logreg",
             "--set", "train.threads=auto"]


@pytest.fixture
def read_only(tmp_path, monkeypatch) -> Path:
    return make_read_only(tmp_path / "ro", monkeypatch)


def test_run_and_its_dry_run_refuse_a_read_only_place(tmp_path, read_only, capsys):
    folder = make_image_folder(tmp_path / "ds", {"cat": 6, "dog": 3}, size=8)
    for extra in ([], ["--dry-run"]):
        assert main(["run", "--data", str(folder), "--out", str(read_only / "out"), *TINY_SETS, *extra]) == 2
        assert f"Cannot write in '{read_only}'" in capsys.readouterr().err
    assert list(read_only.iterdir()) == []


def test_export_refuses_a_read_only_place_naming_its_flag(finished_run, read_only):
    with pytest.raises(OutputError, match=f"Cannot write in '{read_only}'.*writable --to"):
        export_run(finished_run, read_only / "exported", "imagefolder")
    assert list(read_only.iterdir()) == []  # no lock, no temp folder


def test_export_refuses_a_place_over_the_run_it_reads(finished_run):
    with pytest.raises(OutputError, match="inside the run folder|overlaps the input"):
        export_run(finished_run, finished_run / "images" / "again", "imagefolder")


def test_a_sampler_is_not_saved_into_a_read_only_place_or_over_a_folder(tmp_path, read_only):
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = np.concatenate([np.flatnonzero(d.target == 3)[:20], np.flatnonzero(d.target == 8)[:6]])
    sampler = augment.GANOverSampler(image_shape=(8, 8), config={
        "model": {"latent_dim": 4, "width": 4}, "train": {"steps": 2, "batch_size": 8, "checkpoint_every": 2},
        "score": {"external": "logreg"}})
    sampler.fit_resample(d.data[keep], d.target[keep])
    with pytest.raises(OutputError, match=f"Cannot write in '{read_only}'.*writable path"):
        sampler.save(read_only / "sampler.pt")
    assert list(read_only.iterdir()) == []
    with pytest.raises(OutputError, match="is a folder"):
        sampler.save(tmp_path)
    sampler.save(tmp_path / "sampler.pt")  # a writable file name: saved
    assert augment.GANOverSampler.load(tmp_path / "sampler.pt").classes_.tolist() == [3, 8]
