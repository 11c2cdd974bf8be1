"""Each extension point is one declaration: a toy GAN variant, a toy score column and a toy export format,
each registered in one place, run end to end through the pipeline (or export) as a user would."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from makers import KEEP_ALL, make_image_folder, tiny_config

from augment.columns import Column, register_column, unregister_column
from augment.config import build_config
from augment.errors import ConfigError
from augment.export import FORMATS, ExportFormat, export_run, register_format
from augment.models import VARIANTS, Variant, register_variant, unregister_variant
from augment.pipeline import run_pipeline
from augment.torch_dataset import AugmentedImageFolder
from augment.variants import VariantRules


@pytest.fixture
def folder(tmp_path):
    return make_image_folder(tmp_path / "ds", {"cat": 6, "dog": 3}, size=8)


@pytest.fixture
def toy_variant():
    """acgan's networks under a new name whose rules allow only the hinge loss."""
    base = VARIANTS["acgan"]
    rules = VariantRules("toy-gan", "acgan's networks, hinge loss only", losses=("hinge",))
    register_variant(Variant(rules, base.build, base.d_loss, base.g_loss, base.critic, base.class_probs))
    yield rules
    unregister_variant("toy-gan")


def test_a_variant_registered_in_one_place_is_validated_and_runs_end_to_end(toy_variant, folder, tmp_path):
    with pytest.raises(ConfigError, match="model.loss = 'bce' is not meaningful with model.variant = 'toy-gan'"):
        build_config(sets=["model.variant=toy-gan"])
    summary = run_pipeline(str(folder), tiny_config("model.variant=toy-gan", "model.loss=hinge", *KEEP_ALL),
                           tmp_path / "out")
    manifest = pd.read_parquet(tmp_path / "out" / "manifest.parquet")
    synthetic = manifest[manifest["is_synthetic"] & manifest["kept"]]
    assert len(synthetic) == summary["plan"]["dog"] == 3
    assert synthetic["generator"].str.startswith("toy-gan@").all()


def test_an_unregistered_variant_is_refused_by_name(toy_variant):
    unregister_variant("toy-gan")
    with pytest.raises(ConfigError, match="'model.variant' setting must be one of"):
        build_config(sets=["model.variant=toy-gan", "model.loss=hinge"])
    register_variant(Variant(toy_variant, *(getattr(VARIANTS["acgan"], k) for k in
                                            ("build", "d_loss", "g_loss", "critic", "class_probs"))))


def test_the_training_cache_key_follows_whether_a_variant_is_conditional(toy_variant):
    from augment.cache import training_key

    base = VARIANTS["acgan"]
    per_class = replace(toy_variant, name="toy-per-class", conditional=False)
    register_variant(Variant(per_class, base.build, base.d_loss, base.g_loss, base.critic, base.class_probs))
    try:
        def key(variant, plan):
            return training_key("fp", build_config(sets=[f"model.variant={variant}", "model.loss=hinge",
                                                         f'balance.sampling_strategy="{plan}"']))
        assert key("toy-gan", "target:10") == key("toy-gan", "target:20")  # one model for all classes
        assert key("toy-per-class", "target:10") != key("toy-per-class", "target:20")  # one per planned class
    finally:
        unregister_variant("toy-per-class")


@pytest.fixture
def brightness():
    column = register_column(Column(
        "brightness", "float", np.nan, "mean pixel value of the candidate, 0-1", histogram=True, provenance=True,
        compute=lambda inputs: inputs["images"].float().mean(dim=(1, 2, 3)).numpy() / 255.0))
    yield column
    unregister_column("brightness")


def test_a_score_column_declared_once_reaches_manifest_record_report_and_dataset(brightness, folder, tmp_path):
    run_pipeline(str(folder), tiny_config(*KEEP_ALL), tmp_path / "out")
    out = tmp_path / "out"
    manifest = pd.read_parquet(out / "manifest.parquet")
    syn, real = manifest[manifest["is_synthetic"]], manifest[~manifest["is_synthetic"]]
    assert syn["brightness"].between(0, 1).all() and syn["brightness"].nunique() > 1
    assert real["brightness"].isna().all()
    assert json.loads((out / "dataset.json").read_text())["columns"]["brightness"].startswith("mean pixel")
    assert "brightness" in pd.read_csv(out / "manifest.csv").columns
    _, _, provenance = AugmentedImageFolder(out)[len(real)]
    assert 0 <= provenance["brightness"] <= 1


def test_a_column_without_its_computation_is_refused():
    with pytest.raises(ValueError, match="needs `compute`"):
        register_column(Column("orphan", "float", np.nan, "no computation"))


def test_an_export_format_registered_once_is_offered_and_written_atomically(finished_run, tmp_path):
    def names_only(run, tmp, meta, rows):
        tmp.write_text("\n".join(rows["path"]))

    register_format(ExportFormat("paths", names_only, "one line per image path"))
    try:
        result = export_run(finished_run, tmp_path / "paths.txt", "paths")
        lines = (tmp_path / "paths.txt").read_text().splitlines()
        assert result["format"] == "paths" and len(lines) == result["rows"] > 0
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".paths.txt.tmp")]
    finally:
        FORMATS.pop("paths")


def test_the_cli_offers_every_registered_export_format():
    from augment.cli import _parser

    register_format(ExportFormat("paths", lambda *a: None, "one line per image path"))
    try:
        args = _parser().parse_args(["export", "--run", "r", "--to", "t", "--format", "paths"])
        assert args.format == "paths"
    finally:
        FORMATS.pop("paths")
