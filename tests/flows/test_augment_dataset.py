import json

import pandas as pd
import pytest
from makers import KEEP_ALL, make_image_folder, tiny_config
from prefect.artifacts import Artifact

from flows import augment_dataset as f


@pytest.fixture
def folder(tmp_path):
    return make_image_folder(tmp_path / "ds", {"cat": 5, "dog": 2}, size=8)


def test_load_task_returns_small_json_values(folder, tmp_path):
    summary = f.load.fn(str(folder), tiny_config().to_dict(), str(tmp_path / "out"))
    json.dumps(summary)  # passes between tasks as plain values
    assert summary["class_names"] == ["cat", "dog"] and summary["counts"] == [5, 2]


def test_flow_runs_end_to_end_and_publishes_a_summary(folder, tmp_path):
    out = tmp_path / "out"
    summary = f.augment_dataset(str(folder), str(out), tiny_config(*KEEP_ALL).to_dict())
    assert summary["counts_after"] == {"cat": 5, "dog": 5}
    m = pd.read_parquet(out / "manifest.parquet")
    assert m.is_synthetic.sum() == 6 and (m.is_synthetic & m.kept).sum() == 3

    assert "| dog | 2 | 3 | 3 |" in Artifact.get("augment-summary").data
    assert Artifact.get("training-progress").data == 100.0
    report = Artifact.get("augment-report").data
    assert "## Counts" in report and str(out / "figures" / "class_balance.png") in report
    table = Artifact.get("augment-classes").data
    assert '"class": "dog"' in table and "mean_ext_prob_kept" in table


def test_module_entry_point_validates_config_before_running(folder, tmp_path, capsys):
    assert f.main(["--data", str(folder), "--out", str(tmp_path / "o"), "--set", "train.steps=-1"]) == 2
    assert "'train.steps' setting must be a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_flow_with_bad_data_fails_with_the_readers_message(tmp_path, capsys):
    (tmp_path / "ds" / "a").mkdir(parents=True)
    assert f.main(["--data", str(tmp_path / "ds"), "--out", str(tmp_path / "o")]) == 2
    assert "holds no image files" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# The flow goes through augment.pipeline.run_pipeline like `augment run`: the same bad outputs are refused.


@pytest.mark.parametrize("where", ["the data folder", "a folder inside it", "the folder holding it"])
def test_flow_refuses_an_output_over_its_data_as_the_cli_does(folder, where, capsys):
    out = {"the data folder": folder, "a folder inside it": folder / "cat" / "out",
           "the folder holding it": folder.parent}[where]
    before = sorted(p.relative_to(folder.parent) for p in folder.parent.rglob("*"))
    assert f.main(["--data", str(folder), "--out", str(out), "--set", "train.steps=2"]) == 2
    assert "overlaps the input" in capsys.readouterr().err
    assert sorted(p.relative_to(folder.parent) for p in folder.parent.rglob("*")) == before


def test_flow_refuses_an_output_over_its_config_file_as_the_cli_does(folder, tmp_path, capsys):
    config = tmp_path / "settings.toml"
    config.write_text("seed = 1\n")
    assert f.main(["--data", str(folder), "--out", str(config), "--config", str(config)]) == 2
    assert "overlaps the input" in capsys.readouterr().err and config.read_text() == "seed = 1\n"


def test_scheduled_flow_refuses_an_out_root_inside_its_data(folder):
    from augment.errors import OutputError

    with pytest.raises(OutputError, match="overlaps the input"):
        f.augment_dataset(str(folder), out_root=str(folder / "runs"), name="pets",
                          config=tiny_config(*KEEP_ALL).to_dict())


def test_flow_refuses_a_read_only_place_as_the_cli_does(folder, tmp_path, monkeypatch):
    from makers import make_read_only

    from augment.errors import OutputError

    parent = make_read_only(tmp_path / "ro", monkeypatch)
    with pytest.raises(OutputError, match=f"Cannot write in '{parent}'"):
        f.augment_dataset(str(folder), str(parent / "out"), tiny_config(*KEEP_ALL).to_dict())
    assert list(parent.iterdir()) == []


def test_two_scheduled_runs_of_one_dataset_never_interleave(folder, tmp_path):
    """A second deployment on the same out_root finds the dataset's lock: it is refused naming the holder
    (lock_timeout 0) and writes nothing, or waits for the holder and then does the work alone."""
    import threading
    import time

    from augment.locking import RunLockedError, run_lock

    root, cfg = tmp_path / "root", tiny_config(*KEEP_ALL).to_dict()
    with run_lock(root / "pets" / ".lock"):  # another deployment is writing 'pets'
        with pytest.raises(RunLockedError, match="held by pid"):
            f.augment_dataset(str(folder), out_root=str(root), name="pets", config=cfg, lock_timeout=0)
        assert sorted(p.name for p in (root / "pets").iterdir()) == [".lock"]

    def hold_for_a_moment() -> None:
        with run_lock(root / "pets" / ".lock"):
            time.sleep(2)

    holder = threading.Thread(target=hold_for_a_moment)
    holder.start()
    time.sleep(0.2)
    start = time.monotonic()
    summary = f.augment_dataset(str(folder), out_root=str(root), name="pets", config=cfg, lock_timeout=60)
    holder.join()
    assert time.monotonic() - start >= 1.5  # it waited for the holder before writing
    assert len(list((root / "pets" / "runs").iterdir())) == 1 and not summary["up_to_date"]
