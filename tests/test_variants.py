"""Every variant x loss the registry allows trains, checkpoints and resumes; the others are refused."""

import json

import pytest
import torch
from makers import KEEP_ALL, bars, make_image_folder, tiny_config

from augment import checkpoint as ckpt
from augment.config import build_config
from augment.data import LabeledImages
from augment.errors import ConfigError
from augment.generate import generate, load_gan
from augment.models import VARIANTS, DataShape
from augment.models.backbone import has_spectral_norm
from augment.pipeline import run_pipeline
from augment.train import train
from augment.variants import LOSSES, RULES

# the GANs (latent-smote trains by reconstruction: tests/test_latent_smote.py)
ALLOWED = [(v, loss) for v, rules in sorted(RULES.items()) if rules.trainer == "gan" for loss in rules.losses]
REFUSED = [(v, loss) for v, rules in sorted(RULES.items()) for loss in LOSSES if loss not in rules.losses]


@pytest.fixture
def three_class_bars():
    x = torch.stack([torch.from_numpy(bars(i % 2, 8, seed=i)) for i in range(12)])[:, None]
    y = torch.tensor([i % 3 for i in range(12)])
    return LabeledImages(x, y, ["a", "b", "c"], [f"s{i}" for i in range(12)], "bars")


def same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("variant, loss", ALLOWED)
def test_variant_and_loss_train_checkpoint_and_resume_exactly(variant, loss, three_class_bars, tmp_path):
    cfg = tiny_config(f"model.variant={variant}", f"model.loss={loss}", "train.steps=2", "train.critic_steps=2")
    full = train(three_class_bars, cfg, tmp_path / "full")
    train(three_class_bars, cfg, tmp_path / "part", stop_after=1)
    resumed = train(three_class_bars, cfg, tmp_path / "part")
    assert resumed.resumed_from == 1 and resumed.step == 2
    a, b = ckpt.load_checkpoint(full.last_checkpoint), ckpt.load_checkpoint(resumed.last_checkpoint)
    assert same(a["generator"], b["generator"]) and same(a["discriminator"], b["discriminator"])
    rows = [json.loads(r) for r in (tmp_path / "full" / "stats.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["d_loss"])) for r in rows if "d_loss" in r)
    if loss == "wgan-gp":
        assert "gp" in rows[0]


@pytest.mark.parametrize("variant, loss", REFUSED)
def test_meaningless_combinations_are_refused_by_name(variant, loss):
    with pytest.raises(ConfigError, match=rf"model.loss = '{loss}' is not meaningful with model.variant = '{variant}'"):
        build_config(sets=[f"model.variant={variant}", f"model.loss={loss}"])


@pytest.mark.parametrize("sets", [
    ["model.conditioning=concat"],
    ["model.variant=cgan", "model.d_conditioning=channels"],
    ["model.variant=cgan", "model.d_conditioning=projection", "model.conditioning=concat"],
    ["model.spectral_norm=false"],
    ["model.spectral_norm=true", "model.variant=gan-cls", "model.loss=lsgan"],
    ["train.optimizer=rmsprop"],
    ['train.diffaugment="color,translation,cutout"'],
    ["train.ema=false"],
])
def test_options_train_and_resume_exactly(sets, three_class_bars, tmp_path):
    cfg = tiny_config(*sets, "train.steps=2")
    full = train(three_class_bars, cfg, tmp_path / "full")
    train(three_class_bars, cfg, tmp_path / "part", stop_after=1)
    resumed = train(three_class_bars, cfg, tmp_path / "part")
    a, b = ckpt.load_checkpoint(full.last_checkpoint), ckpt.load_checkpoint(resumed.last_checkpoint)
    assert same(a["generator"], b["generator"]) and same(a["discriminator"], b["discriminator"])


def test_gan_cls_needs_two_classes(tmp_path):
    make_image_folder(tmp_path / "faces", {"only": 4}, size=8)
    with pytest.raises(ConfigError, match="'gan-cls' needs at least 2 classes"):
        cfg = tiny_config("model.variant=gan-cls", 'balance.sampling_strategy="target:6"')
        run_pipeline(str(tmp_path / "faces"), cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_64px_rgb_backbone_builds_and_steps(tmp_path):
    x = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)
    data = LabeledImages(x, torch.tensor([0, 0, 1, 1]), ["a", "b"], ["1", "2", "3", "4"])
    result = train(data, tiny_config("image.size=64", "train.steps=1"), tmp_path / "run")
    state = ckpt.load_checkpoint(result.last_checkpoint)
    assert state["shape"] == {"channels": 3, "size": 64, "num_classes": 2}


def test_dcgan_trains_one_generator_per_class_that_needs_images(tmp_path):
    folder = make_image_folder(tmp_path / "ds", {"many": 6, "few": 3, "fewer": 2}, size=8)
    out = tmp_path / "out"
    summary = run_pipeline(str(folder), tiny_config("model.variant=dcgan", *KEEP_ALL), out)
    assert summary["counts_after"] == {"few": 6, "fewer": 6, "many": 6}
    meta = json.loads((out / "dataset.json").read_text())
    assert sorted(tuple(c["classes"]) for c in meta["checkpoints"]) == [("few",), ("fewer",)]
    assert "trained alongside on the real images only" in meta["scorers"]["aux_prob"]
    assert (out / "gan" / "aux_classifier.pt").is_file()
    assert sorted(p.name for p in (out / "gan").iterdir() if p.is_dir()) == ["class-000", "class-001"]


def test_single_folder_dataset_exports_synthetic_images_with_dcgan(tmp_path):
    folder = tmp_path / "faces"
    make_image_folder(folder.parent, {"faces": 5}, size=8, mode="RGB")
    summary = run_pipeline(str(folder), tiny_config("model.variant=dcgan", *KEEP_ALL,
                                                    'balance.sampling_strategy="target:9"'), tmp_path / "out")
    assert summary["class_names"] == ["faces"] and summary["kept"] == {"faces": 4}


@pytest.mark.parametrize("variant", ["cgan", "gan-cls"])
def test_variants_without_class_head_score_with_an_aux_classifier(variant, tmp_path):
    folder = make_image_folder(tmp_path / "ds", {"a": 5, "b": 2}, size=8)
    run_pipeline(str(folder), tiny_config(f"model.variant={variant}", *KEEP_ALL), tmp_path / "out")
    meta = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert meta["scorers"]["aux_prob"].startswith("auxiliary classifier")


def test_classic_architecture_of_the_write_up(three_class_bars, tmp_path):
    x = torch.randint(0, 256, (6, 1, 32, 32), dtype=torch.uint8)
    data = LabeledImages(x, torch.tensor([0, 0, 1, 1, 2, 2]), ["a", "b", "c"], [str(i) for i in range(6)])
    cfg = tiny_config("model.arch=classic", "image.size=32", "model.latent_dim=100", "train.steps=2")
    full = train(data, cfg, tmp_path / "full")
    train(data, cfg, tmp_path / "part", stop_after=1)
    resumed = train(data, cfg, tmp_path / "part")  # dropout draws from the saved global RNG state
    a, b = ckpt.load_checkpoint(full.last_checkpoint), ckpt.load_checkpoint(resumed.last_checkpoint)
    assert same(a["generator"], b["generator"]) and same(a["discriminator"], b["discriminator"])
    assert a["generator"]["project.weight"].shape == (128 * 8 * 8, 100)
    assert a["discriminator"]["adv.weight"].shape == (1, 128 * 2 * 2)


def test_classic_architecture_is_acgan_only():
    with pytest.raises(ConfigError, match="needs model.variant = 'acgan', not 'cgan'"):
        build_config(sets=["model.arch=classic", "model.variant=cgan"])


def test_the_aux_classifiers_time_comes_out_of_the_training_budget(tmp_path):
    """train.max_seconds bounds the whole stage, so variants with and without a class head get equal time."""
    folder = make_image_folder(tmp_path / "ds", {"a": 5, "b": 5}, size=8)
    cfg = tiny_config("model.variant=cgan", *KEEP_ALL, "train.steps=100000", "train.aux_steps=400",
                      "train.max_seconds=0.05")
    run_pipeline(str(folder), cfg, tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "gan" / "result.json").read_text())
    assert summary["aux_classifier_seconds"] > 0.05  # 400 steps: the classifier alone spends the budget
    assert summary["runs"]["all"]["step"] == 1  # so the GAN gets only its first step and checkpoint
    assert summary["seconds"] >= summary["aux_classifier_seconds"]
    # the report says what the budget bought
    assert "train.max_seconds = 0.05 bought 1 of 100,000 steps (stopped by the budget)" in (
        tmp_path / "out" / "report.md").read_text()



@pytest.mark.parametrize("variant, expected", [("acgan", True), ("cgan", True), ("gan-cls", True), ("dcgan", False)])
def test_spectral_norm_auto_is_on_for_conditional_variants(variant, expected):
    cfg = build_config(sets=[f"model.variant={variant}"] + (["model.loss=lsgan"] if variant == "gan-cls" else []))
    _, D = VARIANTS[variant].build(cfg.model, DataShape(channels=1, size=8, num_classes=3))
    assert has_spectral_norm(D.state_dict()) is expected


def test_checkpoint_from_when_auto_meant_no_spectral_norm_still_loads_and_resumes(three_class_bars, tmp_path):
    """acgan checkpoints written while 'auto' meant off carry 'auto' and a plain discriminator."""
    first = train(three_class_bars, tiny_config("model.spectral_norm=false", "train.steps=2"), tmp_path / "run")
    state = ckpt.load_checkpoint(first.last_checkpoint)
    state["config"]["model"]["spectral_norm"] = "auto"
    ckpt.save_checkpoint(state, first.last_checkpoint)

    gan = load_gan(first.last_checkpoint)
    assert not has_spectral_norm(gan.discriminator.state_dict())
    assert len(generate(gan, {0: 3}, seed=0).labels) == 3
    resumed = train(three_class_bars, tiny_config("train.steps=4"), tmp_path / "run")
    assert resumed.resumed_from == 2
    assert not has_spectral_norm(ckpt.load_checkpoint(resumed.last_checkpoint)["discriminator"])
