"""Hostile or unlucky use: every case ends with exit 0 or 2, the right message, the input untouched, and
nothing left that blocks the next run."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from makers import KEEP_ALL, make_image_folder, make_read_only

import augment.atomic
import augment.train_state
from augment.cli import main
from augment.data.readers import load_dataset
from augment.errors import DatasetError
from augment.locking import run_lock

TINY_SETS = ["--set", "image.size=8", "--set", "model.latent_dim=4", "--set", "model.width=4",
             "--set", "train.steps=2", "--set", "train.batch_size=4", "--set", "train.checkpoint_every=1",
             "--set", "train.device=cpu", "--set", "train.threads=auto", "--set", "score.external=logreg",
             *[x for s in KEEP_ALL for x in ("--set", s)]]


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def folder(tmp_path):
    return make_image_folder(tmp_path / "ds", {"cat": 6, "dog": 3}, size=8)


def run(*args: str) -> int:
    return main(["run", *args, "--quiet"])


# ---------------------------------------------------------------- output over input


@pytest.mark.parametrize("where", ["the data folder", "a folder inside it", "the folder holding it"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_output_over_the_input_is_refused_and_the_input_untouched(folder, capsys, where, overwrite):
    out = {"the data folder": folder, "a folder inside it": folder / "cat" / "out",
           "the folder holding it": folder.parent}[where]
    before = files_under(folder.parent)
    sets = ["--set", "out.overwrite=true"] if overwrite else []
    assert run("--data", str(folder), "--out", str(out), *TINY_SETS, *sets) == 2
    assert "input" in capsys.readouterr().err
    assert files_under(folder.parent) == before


def test_output_over_a_manifest_folder_or_the_config_file_is_refused(tmp_path, folder, capsys):
    pd.DataFrame({"path": ["cat/img000.png", "dog/img006.png", "dog/img007.png", "cat/img001.png"],
                  "label": ["cat", "dog", "dog", "cat"]}).to_csv(folder / "labels.csv", index=False)
    assert run("--data", str(folder / "labels.csv"), "--out", str(folder / "augmented"), *TINY_SETS) == 2
    assert "input" in capsys.readouterr().err
    config = tmp_path / "settings.toml"
    config.write_text("seed = 1\n")
    assert run("--data", str(folder), "--out", str(config), "--config", str(config), *TINY_SETS) == 2
    assert config.read_text() == "seed = 1\n"


# ---------------------------------------------------------------- links


def test_a_link_to_an_ancestor_folder_is_refused_not_followed(folder):
    os.symlink("..", folder / "cat" / "loop")
    with pytest.raises(DatasetError, match=r"loop.*contains it"):
        load_dataset(str(folder))


def test_two_looping_links_end_quickly_with_a_clear_error(folder):
    os.symlink("../dog", folder / "cat" / "to-dog")
    os.symlink("../cat", folder / "dog" / "to-cat")
    started = time.perf_counter()
    with pytest.raises(DatasetError, match="cycle|two classes"):
        load_dataset(str(folder))
    assert time.perf_counter() - started < 10


def test_a_file_reached_under_two_labels_is_refused(folder):
    os.symlink(folder / "dog" / "img006.png", folder / "cat" / "also-a-dog.png")
    with pytest.raises(DatasetError, match=r"img006\.png.*two classes"):
        load_dataset(str(folder))


def test_a_link_inside_its_own_class_is_read_once(folder):
    os.symlink("img000.png", folder / "cat" / "same.png")
    assert load_dataset(str(folder)).counts() == [6, 3]


# ---------------------------------------------------------------- one run per output


def test_a_second_run_on_a_locked_output_exits_2_naming_the_holder(folder, tmp_path, capsys):
    out = tmp_path / "out"
    with run_lock(out.parent / f".{out.name}.lock"):
        assert run("--data", str(folder), "--out", str(out), *TINY_SETS) == 2
    err = capsys.readouterr().err
    assert f"pid {os.getpid()}" in err and "host" in err
    assert not out.exists()
    assert run("--data", str(folder), "--out", str(out), *TINY_SETS) == 0  # the lock went with its holder


def test_export_takes_the_lock_of_its_target(finished_run, tmp_path, capsys):
    to = tmp_path / "exported"
    with run_lock(to.parent / f".{to.name}.lock"):
        assert main(["export", "--run", str(finished_run), "--to", str(to), "--format", "npz"]) == 2
    assert "pid" in capsys.readouterr().err and not to.exists()


# ---------------------------------------------------------------- full disk, read-only


def test_disk_full_while_marking_the_best_checkpoint_leaves_a_run_that_resumes(folder, tmp_path, monkeypatch,
                                                                              capsys):
    real_copy = augment.train_state.copy_file

    def full_disk(src, dst):  # the disk fills up between the checkpoint and best.pt
        def write(fh):
            raise OSError(errno.ENOSPC, "No space left on device")
        augment.atomic.write_atomic(dst, write)

    monkeypatch.setattr(augment.train_state, "copy_file", full_disk)
    out = tmp_path / "out"
    assert run("--data", str(folder), "--out", str(out), *TINY_SETS) == 2
    assert "No space left" in capsys.readouterr().err and not out.exists()
    monkeypatch.setattr(augment.train_state, "copy_file", real_copy)
    assert run("--data", str(folder), "--out", str(out), *TINY_SETS) == 0
    assert (out / "manifest.parquet").exists()
    assert not (tmp_path / ".out.augment-work").exists()


def test_export_to_a_full_disk_exits_2_and_leaves_nothing(finished_run, tmp_path, monkeypatch, capsys):
    import augment.export

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(augment.export.shutil, "copyfile", full_disk)
    to = tmp_path / "exported"
    assert main(["export", "--run", str(finished_run), "--to", str(to), "--format", "imagefolder"]) == 2
    assert "No space left" in capsys.readouterr().err
    assert not to.exists() and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_an_unwritable_parent_of_a_missing_output_is_exit_2(folder, tmp_path, monkeypatch, capsys):
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if str(self).startswith(str(tmp_path / "ro")):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    assert run("--data", str(folder), "--out", str(tmp_path / "ro" / "sub" / "out"), *TINY_SETS) == 2
    assert "Read-only" in capsys.readouterr().err
    assert main(["export", "--run", str(folder), "--to", str(tmp_path / "ro" / "x"), "--format", "npz"]) == 2


# ---------------------------------------------------------------- exports that stay inside their target


def test_export_refuses_a_target_inside_the_run(finished_run, capsys):
    before = files_under(finished_run)
    for to in (finished_run / "images" / "new", finished_run / "manifest.csv" / "x"):
        assert main(["export", "--run", str(finished_run), "--to", str(to), "--format", "imagefolder"]) == 2
    assert "inside the run" in capsys.readouterr().err
    assert files_under(finished_run) == before


@pytest.mark.parametrize("bad_path", ["/etc/hostname", "images/../../x.png", "../outside.png"])
def test_export_refuses_a_manifest_that_points_outside_the_run(finished_run, tmp_path, capsys, bad_path):
    import shutil

    run_copy = tmp_path / "run"
    shutil.copytree(finished_run, run_copy)
    m = pd.read_parquet(run_copy / "manifest.parquet")
    m.loc[0, "path"] = bad_path
    m.to_parquet(run_copy / "manifest.parquet", index=False)
    to = tmp_path / "exported"
    assert main(["export", "--run", str(run_copy), "--to", str(to), "--format", "imagefolder"]) == 2
    assert "outside the run folder" in capsys.readouterr().err
    assert not to.exists() and not (tmp_path / "x.png").exists()


def test_a_class_named_like_a_file_exports_and_keeps_its_name(tmp_path):
    folder = make_image_folder(tmp_path / "ds", {"manifest.csv": 5, "dog": 3}, size=8)
    assert run("--data", str(folder), "--out", str(tmp_path / "out"), *TINY_SETS) == 0
    to = tmp_path / "exported"
    assert main(["export", "--run", str(tmp_path / "out"), "--to", str(to), "--format", "imagefolder"]) == 0
    m = pd.read_csv(to / "manifest.csv")
    assert set(m["class_name"]) == {"manifest.csv", "dog"}
    assert all((to / p).is_file() for p in m["path"])


# ---------------------------------------------------------------- config abuse


@pytest.mark.parametrize("kind", ["binary", "folder"])
def test_an_unreadable_config_file_is_exit_2_naming_it(folder, tmp_path, capsys, kind):
    config = tmp_path / "settings.toml"
    if kind == "binary":
        config.write_bytes(b"\xff\xfe\x00\x81binary")
    else:
        config.mkdir()
    assert run("--data", str(folder), "--out", str(tmp_path / "out"), "--config", str(config)) == 2
    assert str(config) in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.augment-work").exists()


def test_a_seed_no_library_accepts_is_refused_before_any_work(folder, tmp_path, capsys):
    assert run("--data", str(folder), "--out", str(tmp_path / "out"), "--set", "seed=4294967296") == 2
    assert "'seed'" in capsys.readouterr().err
    assert not (tmp_path / ".out.augment-work").exists()


# ---------------------------------------------------------------- signals


@pytest.mark.slow
def test_sigterm_ends_a_run_like_ctrl_c_and_the_rerun_resumes(folder, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "augment.cli", "run", "--data", str(folder), "--out", str(out), *TINY_SETS,
           "--set", "train.steps=100000", "--quiet"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    checkpoints = tmp_path / ".out.augment-work" / "train" / "all" / "checkpoints"
    deadline = time.monotonic() + 120
    while not list(checkpoints.glob("ckpt-*.pt")) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "terminated" in err
    reached = max(int(p.stem.split("-")[1]) for p in checkpoints.glob("ckpt-*.pt"))
    rerun = [*cmd[:-3], "--set", f"train.steps={reached + 2}", "--quiet"]  # steps may change on resume
    assert subprocess.run(rerun, capture_output=True).returncode == 0
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["training"]["resumed_from"] == reached and meta["training"]["steps"] == reached + 2


# ---------------------------------------------------------------- bounded memory


def test_a_large_photo_is_decoded_at_reduced_scale_and_normalised_from_its_size_on_disk(tmp_path):
    import numpy as np
    from PIL import Image

    from augment.data.decode import decode_image

    y, x = np.mgrid[0:1500, 0:2000]
    photo = np.stack([x * 255 // 2000, y * 255 // 1500, (x + y) * 255 // 3500], -1).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=90)
    decoded = decode_image(tmp_path / "photo.jpg", max_pixels=50_000_000, max_side=256)
    assert decoded.shape == (1500, 2000)
    assert 256 <= min(decoded.pixels.shape[:2]) < 1500 // 2  # never decoded at full size
    full = decode_image(tmp_path / "photo.jpg", max_pixels=50_000_000)
    assert full.pixels.shape[:2] == (1500, 2000)


def test_wide_features_are_projected_before_the_quality_metrics():
    import numpy as np

    from augment.score.metrics import MAX_FEATURE_DIM, MetricInputs, bounded_features, quality_table

    rng = np.random.default_rng(0)
    real, fake = rng.random((30, 12_288)), rng.random((20, 12_288))
    r, f = bounded_features(real, fake)
    assert r.shape == (30, MAX_FEATURE_DIM) and f.shape == (20, MAX_FEATURE_DIM)
    near = np.linalg.norm(real[0] - real[1]), np.linalg.norm(r[0] - r[1])
    assert abs(near[1] / near[0] - 1) < 0.2  # distances survive the projection
    narrow = rng.random((30, 64))
    assert bounded_features(narrow, narrow)[0] is narrow  # narrow features are left alone
    labels = np.repeat([0, 1], [15, 15])
    inputs = MetricInputs(real, fake, np.repeat([0, 1], 10), np.repeat([0, 1], 10), 2, 0.1)
    table = quality_table(real, labels, inputs, ["a", "b"])
    assert table["frechet_distance"].notna().all()


# ---------------------------------------------------------------- read-only places


def test_a_read_only_parent_is_exit_2_before_anything_is_written(folder, tmp_path, capsys, monkeypatch):
    """As on a read-only filesystem: the lock file's creation failed with exit 1 and a traceback before."""
    parent = make_read_only(tmp_path / "ro", monkeypatch)
    assert run("--data", str(folder), "--out", str(parent / "out"), *TINY_SETS) == 2
    assert f"Cannot write in '{parent}'" in capsys.readouterr().err
    assert list(parent.iterdir()) == []  # no lock, no work folder, no output


def test_a_lock_that_cannot_be_created_is_an_output_error_not_a_traceback(tmp_path, monkeypatch):
    import augment.locking
    from augment.errors import OutputError

    def read_only(path, flags, mode=0o777):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(augment.locking.os, "open", read_only)
    with pytest.raises(OutputError, match="Read-only file system"):
        with run_lock(tmp_path / ".out.lock"):
            pass


def test_a_tree_is_synced_by_one_syncfs_of_its_filesystem_on_linux(tmp_path, monkeypatch):
    """On Linux, one syncfs(2) makes the whole tree durable: no file is synced one by one."""
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.png").write_bytes(b"png")
    assert augment.atomic.syncfs(tmp_path) is sys.platform.startswith("linux")
    synced_files = []
    monkeypatch.setattr(augment.atomic, "fsync_file", lambda p: synced_files.append(Path(p)))
    augment.atomic.fsync_tree(tmp_path)
    assert synced_files == ([] if sys.platform.startswith("linux") else [tmp_path / "x" / "a.png"])


def test_without_syncfs_a_tree_is_synced_file_by_file_then_folder_by_folder_deepest_first(tmp_path, monkeypatch):
    """Where syncfs is missing, what the output's rename publishes is made durable file by file (several at
    once), then each folder after the folders inside it."""
    monkeypatch.setattr(augment.atomic, "syncfs", lambda path: False)
    for rel in ("a.png", "x/b.png", "x/y/c.png", "z/d.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"png")
    synced_files, synced_dirs = [], []
    monkeypatch.setattr(augment.atomic, "fsync_file", lambda p: synced_files.append(Path(p)))
    monkeypatch.setattr(augment.atomic, "fsync_dir", lambda p: synced_dirs.append(Path(p)))
    augment.atomic.fsync_tree(tmp_path, workers=3)
    assert sorted(synced_files) == sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert set(synced_dirs) == {tmp_path, tmp_path / "x", tmp_path / "x" / "y", tmp_path / "z"}
    assert synced_dirs.index(tmp_path / "x" / "y") < synced_dirs.index(tmp_path / "x") < synced_dirs.index(tmp_path)
