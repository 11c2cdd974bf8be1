"""A finished run read through Hugging Face `datasets`: the output folder is an imagefolder whose
images/metadata.csv carries every manifest column, so provenance survives the first step of a user's
pipeline, and neither report figures nor rejected candidates become rows."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder: nothing to fetch, never reach for the network

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from augment.output import hf_loading, manifest_columns  # noqa: E402

datasets = pytest.importorskip("datasets", reason="the test extra installs datasets")


def kept_rows(run) -> pd.DataFrame:
    m = pd.read_parquet(run / "manifest.parquet")
    return m[m["kept"]].sort_values("path").reset_index(drop=True)


@pytest.mark.parametrize("where", ["run", "images"])
def test_load_dataset_imagefolder_yields_the_kept_images_with_their_manifest_columns(finished_run, tmp_path, where):
    data_dir = finished_run if where == "run" else finished_run / "images"
    ds = datasets.load_dataset("imagefolder", data_dir=str(data_dir), cache_dir=str(tmp_path / "hf"))
    assert list(ds) == ["train"]  # one split: no figure or folder name reads as a split word
    train = ds["train"].sort("path")
    want = kept_rows(finished_run)
    assert len(train) == len(want) == 12  # 6 cat + 3 dog real, 3 kept synthetic dog; no rejected, no figures
    assert set(manifest_columns()) <= set(train.column_names) and "image" in train.column_names
    assert train["path"] == want["path"].tolist()
    assert train["label"] == want["label"].tolist() and train["class_name"] == want["class_name"].tolist()
    assert sum(train["is_synthetic"]) == 3 and all(g.startswith("acgan@") for g in train.filter(
        lambda r: r["is_synthetic"])["generator"])
    assert train["weight"] == pytest.approx(want["weight"].tolist())
    first = train[0]
    assert first["image"].size == (8, 8)  # the PNG itself, decoded by datasets


def test_dataset_json_names_the_call_that_loads_it(finished_run):
    import json

    meta = json.loads((finished_run / "dataset.json").read_text())
    assert meta["huggingface"] == {"load": "datasets.load_dataset('imagefolder', data_dir=RUN)"}


def test_a_class_or_file_named_with_a_split_word_gets_the_data_files_form(finished_run, tmp_path):
    m = pd.DataFrame({"path": ["images/test/a.png", "images/cat/val_01.png", "images/cat/intestine.png"]})
    loading = hf_loading(m, ["test", "cat"])
    assert "data_files={'train': 'RUN/images/**'}" in loading["load"]
    assert "images/test/a.png" in loading["why"] and "intestine" not in loading["why"]
    assert hf_loading(pd.DataFrame({"path": ["images/cat/contest1.png", "images/cat/trainset-000001.png"]}),
                      ["cat"]) == {"load": "datasets.load_dataset('imagefolder', data_dir=RUN)"}
    # and that form loads the same rows as data_dir does
    ds = datasets.load_dataset("imagefolder", data_files={"train": str(finished_run / "images" / "**")},
                               cache_dir=str(tmp_path / "hf"))
    assert sorted(ds["train"]["path"]) == kept_rows(finished_run)["path"].tolist()


def test_no_path_of_a_finished_run_reads_as_a_split_word(finished_run):
    from augment.output import HF_SPLIT_WORD

    paths = [p.relative_to(finished_run).as_posix() for p in finished_run.rglob("*") if p.is_file()]
    assert "images/metadata.csv" in paths and any(p.startswith("gan/") for p in paths)
    assert [p for p in paths if HF_SPLIT_WORD.search(p)] == []


def test_an_imagefolder_export_loads_with_its_provenance_too(finished_run, tmp_path):
    from augment.export import export_run

    export_run(finished_run, tmp_path / "synthetic", "imagefolder", synthetic_only=True, kept_only=True)
    ds = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "synthetic"), cache_dir=str(tmp_path / "hf"))
    train = ds["train"]
    assert len(train) == 3 and all(train["is_synthetic"]) and set(train["class_name"]) == {"dog"}
    assert all(p.startswith(str(finished_run)) for p in train["run_path"])  # where each row came from
