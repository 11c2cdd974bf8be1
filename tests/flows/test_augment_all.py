"""The multi-dataset flow: every dataset runs, a broken one does not stop the others, reruns are cached."""

import json
from pathlib import Path

import pytest
from makers import TINY, make_image_folder
from prefect.artifacts import Artifact

from flows.augment_all import augment_all


def write_config(tmp_path: Path, datasets: str) -> Path:
    f = tmp_path / "datasets.toml"
    defaults = json.dumps(TINY).replace('":', '" =').replace("{", "{ ").replace("}", " }")
    f.write_text(f'out_root = "{tmp_path / "runs"}"\ndefaults = {defaults}\n' + datasets)
    return f


@pytest.fixture
def two_datasets(tmp_path):
    make_image_folder(tmp_path / "good", {"a": 5, "b": 2}, size=8)
    (tmp_path / "broken" / "a").mkdir(parents=True)  # an empty class folder
    make_image_folder(tmp_path / "broken", {"b": 3}, size=8)
    return write_config(tmp_path, f'[[datasets]]\nname = "good"\ndata = "{tmp_path / "good"}"\n'
                                  f'[[datasets]]\nname = "broken"\ndata = "{tmp_path / "broken"}"\n')


def test_a_broken_dataset_does_not_stop_the_others(two_datasets, tmp_path):
    state = augment_all(str(two_datasets), return_state=True)
    assert state.is_failed() and "1 of 2 dataset(s) failed: broken" in state.message
    rows = {r["dataset"]: r for r in state.result(raise_on_failure=False)}
    assert rows["good"]["status"] == "done" and rows["broken"]["status"] == "failed"
    assert "holds no image files" in rows["broken"]["why"]
    latest = tmp_path / "runs" / "good" / "latest"
    assert (latest / "manifest.parquet").is_file() and latest.resolve().parent.name == "runs"
    assert '"status": "failed"' in Artifact.get("augment-all").data


def test_rerun_over_unchanged_data_is_up_to_date(tmp_path):
    make_image_folder(tmp_path / "good", {"a": 5, "b": 2}, size=8)
    config = write_config(tmp_path, f'[[datasets]]\nname = "good"\ndata = "{tmp_path / "good"}"\n')
    first = augment_all(str(config), return_state=True).result()
    second = augment_all(str(config), return_state=True).result()
    assert first[0]["status"] == "done" and second[0]["status"] == "up to date"
    assert second[0]["out"] == first[0]["out"]
    assert len(list((tmp_path / "runs" / "good" / "runs").iterdir())) == 1


def test_a_dataset_whose_output_folder_holds_the_datasets_file_is_refused(tmp_path, tmp_path_factory):
    """The datasets file is an input, as --config is for `augment run`: a dataset whose <out_root>/<name>
    folder holds it is refused before anything is written there; the other datasets run."""
    good = make_image_folder(tmp_path_factory.mktemp("data") / "good", {"a": 5, "b": 2}, size=8)
    config = write_config(tmp_path, f'[[datasets]]\nname = "good"\ndata = "{good}"\n'
                                    f'[[datasets]]\nname = "{tmp_path.name}"\ndata = "{good}"\n'
                                    f'out_root = "{tmp_path.parent}"\n')  # its <out_root>/<name> is tmp_path
    before = sorted(p.name for p in tmp_path.iterdir())
    state = augment_all(str(config), return_state=True)
    rows = {r["dataset"]: r for r in state.result(raise_on_failure=False)}
    assert rows["good"]["status"] == "done"
    refused = rows[tmp_path.name]
    assert refused["status"] == "failed" and "overlaps the input" in refused["why"], refused
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "runs"])  # only good's runs/ appeared


def test_the_training_cache_is_pruned_to_its_bound_after_the_datasets(tmp_path):
    make_image_folder(tmp_path / "good", {"a": 5, "b": 2}, size=8)
    config = write_config(tmp_path, f'[[datasets]]\nname = "good"\ndata = "{tmp_path / "good"}"\n')
    config.write_text("cache_max_gb = 1e-9\n" + config.read_text())  # one byte: no entry fits
    assert augment_all(str(config), return_state=True).is_completed()
    cache = tmp_path / "runs" / ".augment-cache"
    assert (cache / "train").is_dir() and not [e for kind in cache.iterdir() for e in kind.iterdir()]
    assert (tmp_path / "runs" / "good" / "latest" / "manifest.parquet").is_file()  # outputs are not the cache's
