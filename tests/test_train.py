import json

import pytest
import torch
from makers import bars, tiny_config

import augment.precision
from augment import checkpoint as ckpt
from augment.data import LabeledImages
from augment.device import ALL_CORES
from augment.errors import ConfigError
from augment.train import pick_best, train


@pytest.fixture
def two_class_bars():
    x = torch.stack([torch.from_numpy(bars(i % 2, 8, seed=i)) for i in range(12)])[:, None]
    y = torch.tensor([i % 2 for i in range(12)])
    return LabeledImages(x, y, ["horizontal", "vertical"], [f"b{i}" for i in range(12)], "bars")


def weights(path):
    return ckpt.load_checkpoint(path)


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_few_steps_write_checkpoints_grids_and_stats(two_class_bars, tmp_path):
    cfg = tiny_config("train.steps=4", "train.checkpoint_every=2", "train.keep_checkpoints=1")
    result = train(two_class_bars, cfg, tmp_path / "run")
    assert result.step == 4 and result.resumed_from == 0
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["best.pt", "ckpt-0000004.pt"]  # older pruned, best kept
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == ["grid-0000002.png", "grid-0000004.png"]
    rows = [json.loads(line) for line in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert {"d_loss", "g_loss", "aux_acc_real", "aux_acc_fake", "imgs_per_s"} <= rows[0].keys()


def test_the_result_and_stats_say_how_many_cpu_threads_trained(two_class_bars, tmp_path):
    adaptive = train(two_class_bars, tiny_config("train.steps=3", "train.threads=adaptive"), tmp_path / "adaptive")
    assert adaptive.threads[0][0] == 0.0 and 1 <= adaptive.threads[0][1] <= ALL_CORES  # the cores others leave
    fixed = train(two_class_bars, tiny_config("train.steps=3", "train.threads=1"), tmp_path / "one")
    assert fixed.threads == [[0.0, 1]]
    rows = [json.loads(line) for line in (tmp_path / "one" / "stats.jsonl").read_text().splitlines()]
    assert {r["threads"] for r in rows if "d_loss" in r} == {1}


def test_checkpoint_holds_everything_to_resume_and_loads_weights_only(two_class_bars, tmp_path):
    result = train(two_class_bars, tiny_config(), tmp_path / "run")
    state = torch.load(result.last_checkpoint, weights_only=True)
    assert state["step"] == 2 and state["fingerprint"] == two_class_bars.fingerprint
    for key in ("generator", "generator_ema", "discriminator", "opt_g", "opt_d", "rng", "config", "best"):
        assert key in state
    assert set(state["rng"]) == {"data", "noise", "torch"}


def test_resumed_run_ends_with_identical_weights(two_class_bars, tmp_path):
    cfg = tiny_config("train.steps=6", "train.checkpoint_every=3")
    full = train(two_class_bars, cfg, tmp_path / "full")
    part = train(two_class_bars, cfg, tmp_path / "part", stop_after=3)  # as if killed after step 3
    assert part.step == 3
    resumed = train(two_class_bars, cfg, tmp_path / "part")
    assert resumed.resumed_from == 3 and resumed.step == 6
    a, b = weights(full.last_checkpoint), weights(resumed.last_checkpoint)
    for key in ("generator", "generator_ema", "discriminator"):
        assert same_state(a[key], b[key]), key
    assert a["opt_g"]["state"][0]["exp_avg"].equal(b["opt_g"]["state"][0]["exp_avg"])
    stats = [json.loads(line)["step"] for line in (tmp_path / "part" / "stats.jsonl").read_text().splitlines()
             if "d_loss" in line]
    assert stats == [1, 2, 3, 4, 5, 6]  # no duplicated rows after the resume


def test_different_seed_gives_different_weights(two_class_bars, tmp_path):
    a = train(two_class_bars, tiny_config(), tmp_path / "a")
    b = train(two_class_bars, tiny_config("seed=1"), tmp_path / "b")
    assert not same_state(weights(a.last_checkpoint)["generator"], weights(b.last_checkpoint)["generator"])


def test_corrupt_latest_checkpoint_falls_back_to_the_previous(two_class_bars, tmp_path):
    cfg = tiny_config("train.steps=4", "train.checkpoint_every=2")
    train(two_class_bars, cfg, tmp_path / "run", stop_after=4)
    latest = tmp_path / "run" / "checkpoints" / "ckpt-0000004.pt"
    latest.write_bytes(latest.read_bytes()[:100])  # truncated, as by a crash mid-copy
    result = train(two_class_bars, cfg, tmp_path / "run")
    assert result.resumed_from == 2 and result.step == 4
    assert any("ckpt-0000004.pt" in p and "unreadable" in p for p in result.problems)


def test_resuming_with_other_settings_or_data_is_refused(two_class_bars, tmp_path):
    train(two_class_bars, tiny_config(), tmp_path / "run", stop_after=1)
    with pytest.raises(ConfigError, match=r"different settings for \['train\.lr'\]"):
        train(two_class_bars, tiny_config("train.lr=0.0005"), tmp_path / "run")
    other = two_class_bars.subset(list(range(10)))
    with pytest.raises(ConfigError, match="trained on different data"):
        train(other, tiny_config(), tmp_path / "run")
    # more steps is fine: that is how a finished run is extended
    assert train(two_class_bars, tiny_config("train.steps=3"), tmp_path / "run").step == 3


def test_quality_check_picks_the_best_checkpoint(two_class_bars, tmp_path):
    scores = iter([0.2, 0.9, 0.1])
    seen = []

    def quality(sample):
        images, labels = sample(3)
        seen.append((images.shape, images.dtype, labels.tolist()))
        return {"score": next(scores)}

    result = train(two_class_bars, tiny_config("train.steps=3"), tmp_path / "run", quality=quality)
    assert result.best_step == 2 and result.best_score == 0.9
    assert seen[0] == (torch.Size([6, 1, 8, 8]), torch.uint8, [0, 0, 0, 1, 1, 1])
    checkpoints = tmp_path / "run" / "checkpoints"
    best, step2 = weights(checkpoints / "best.pt"), weights(checkpoints / "ckpt-0000002.pt")
    assert same_state(best["generator"], step2["generator"])


def test_a_later_checkpoint_within_the_tolerance_becomes_best(two_class_bars, tmp_path):
    def run(tolerance, name):
        scores = iter([0.90, 0.89, 0.50])  # a plateau, then a collapse
        return train(two_class_bars, tiny_config("train.steps=3", f"train.best_tolerance={tolerance}"),
                     tmp_path / name, quality=lambda sample: {"score": next(scores)})

    assert run(0.02, "tolerant").best_step == 2  # 0.89 is within 0.02 of 0.90; the collapse is not
    assert run(0.0, "strict").best_step == 1


def test_pick_best_follows_the_peak_and_keeps_the_pick_through_a_collapse():
    best = {"step": 0, "score": None}
    picks = []
    for step, score in [(1, 0.80), (2, 0.95), (3, 0.94), (4, 0.90), (5, 0.97), (6, 0.96), (7, 0.30)]:
        best = pick_best(best, step, score, tolerance=0.02)
        picks.append(best["step"])
    assert picks == [1, 2, 3, 3, 5, 6, 6]
    assert best == {"step": 6, "score": 0.96, "peak": 0.97}
    # tolerance 0 (the default) keeps the first checkpoint to reach the highest score
    assert pick_best({"step": 1, "score": 1.0, "peak": 1.0}, 2, 1.0, 0.0)["step"] == 1
    # a state saved before "peak" was recorded resumes with its pick's score as the peak
    assert pick_best({"step": 4, "score": 0.9}, 5, 0.885, 0.02)["step"] == 5


def test_rgb_and_28px_shapes_train(tmp_path):
    x = torch.randint(0, 256, (6, 3, 28, 28), dtype=torch.uint8)
    data = LabeledImages(x, torch.tensor([0, 0, 1, 1, 2, 2]), ["a", "b", "c"], [str(i) for i in range(6)])
    result = train(data, tiny_config("image.size=28", "train.steps=1"), tmp_path / "run")
    assert result.step == 1


def test_cuda_requested_without_cuda_is_a_config_error(two_class_bars, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="train.device is 'cuda' but no CUDA device"):
        train(two_class_bars, tiny_config("train.device=cuda"), tmp_path / "run")


def test_bf16_on_a_cpu_without_bf16_units_is_a_config_error_that_writes_nothing(two_class_bars, tmp_path,
                                                                                monkeypatch):
    monkeypatch.setattr(augment.precision, "_cpu_has", lambda check: False)
    with pytest.raises(ConfigError, match="train.precision is 'bf16' but this CPU has no bf16 arithmetic"):
        train(two_class_bars, tiny_config("train.device=cpu", "train.precision=bf16"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("precision, expected", [("auto", "bf16"), ("bf16", "bf16"), ("fp32", "fp32")])
def test_a_cpu_with_amx_trains_in_bf16_unless_fp32_is_asked_for(two_class_bars, tmp_path, monkeypatch,
                                                                 precision, expected):
    monkeypatch.setattr(augment.precision, "_cpu_has", lambda check: check == "_is_amx_tile_supported")
    result = train(two_class_bars, tiny_config("train.device=cpu", "train.steps=3", f"train.precision={precision}"),
                   tmp_path / "run")
    assert result.precision == expected and result.step == 3
    rows = [json.loads(r) for r in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    assert all(v == v for r in rows for k, v in r.items() if k.endswith("loss"))  # no NaN


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["auto", "bf16", "fp32"])
def test_trains_on_cuda(two_class_bars, tmp_path, precision):
    result = train(two_class_bars, tiny_config("train.device=cuda", "train.steps=3", f"train.precision={precision}"),
                   tmp_path / "run")
    assert result.device.startswith("cuda") and result.step == 3
    rows = [json.loads(r) for r in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    assert all(v == v for r in rows for k, v in r.items() if k.endswith("loss"))  # no NaN


@pytest.mark.gpu
def test_a_cuda_run_resumes_and_its_checkpoint_loads_on_the_cpu(two_class_bars, tmp_path):
    from augment.generate import generate, load_gan

    train(two_class_bars, tiny_config("train.device=cuda", "train.steps=4", "train.checkpoint_every=2"),
          tmp_path / "run", stop_after=2)
    resumed = train(two_class_bars, tiny_config("train.device=cuda", "train.steps=4", "train.checkpoint_every=2"),
                    tmp_path / "run")
    assert resumed.resumed_from == 2 and resumed.step == 4
    gan = load_gan(resumed.last_checkpoint, "cpu")
    assert next(gan.generator.parameters()).device.type == "cpu"
    syn = generate(gan, {0: 3, 1: 2}, seed=0)
    assert syn.images.dtype == torch.uint8 and syn.images.shape == (5, 1, 8, 8)


@pytest.mark.slow
def test_compiled_networks_train_and_checkpoint_plain_weights(two_class_bars, tmp_path):
    result = train(two_class_bars, tiny_config("train.compile=true"), tmp_path / "run")
    state = weights(result.last_checkpoint)
    assert not any(k.startswith("_orig_mod") for k in state["generator"])  # loadable without compile


def test_a_batch_whose_largest_layer_passes_int_max_is_refused_with_the_largest_that_fits():
    from augment.models import DataShape
    from augment.train import build_networks, check_batch_fits

    cfg = tiny_config("model.arch=classic", "image.size=32", "model.latent_dim=100")
    G, D = build_networks(cfg, DataShape(channels=1, size=32, num_classes=10))
    check_batch_fits(G, D, 16383, 100, torch.device("cpu"))  # 16383 x 128 x 32 x 32 < 2^31
    with pytest.raises(ConfigError, match=r"train.batch_size = 16384 is too large.*Use train.batch_size <= 16383"):
        check_batch_fits(G, D, 16384, 100, torch.device("cpu"))


@pytest.mark.gpu
def test_cuda_training_refuses_a_batch_too_large_for_its_kernels_before_writing_anything(tmp_path):
    x = torch.randint(0, 256, (8, 1, 32, 32), dtype=torch.uint8)
    data = LabeledImages(x, torch.tensor([0, 1] * 4), ["a", "b"], [str(i) for i in range(8)])
    cfg = tiny_config("train.device=cuda", "model.arch=classic", "image.size=32", "train.batch_size=65536")
    with pytest.raises(ConfigError, match="too large for this model on CUDA"):
        train(data, cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_embedding_noise_spreads_a_class_while_training_and_never_while_generating():
    from augment.models.backbone import Generator

    G = Generator(4, 2, 1, 8, 4, "embed_mul", embed_noise=0.75)
    z, y = torch.randn(1, 4).repeat(16, 1), torch.zeros(16, dtype=torch.long)  # one latent, sixteen times
    G.eval()
    assert torch.allclose(G(z, y), G(z, y)[:1].expand(16, -1, -1, -1))
    G.train()
    assert G(z, y).std(0).mean() > 0.01  # the same latent gives different images: the embedding was perturbed


def test_embedding_noise_and_class_weight_are_settings_that_train(two_class_bars, tmp_path):
    plain = train(two_class_bars, tiny_config(), tmp_path / "plain")
    noisy = train(two_class_bars, tiny_config("model.embed_noise=0.75", "model.g_class_weight=0.5"), tmp_path / "n")
    assert not same_state(weights(plain.last_checkpoint)["generator"], weights(noisy.last_checkpoint)["generator"])
    with pytest.raises(ConfigError, match="model.embed_noise"):
        tiny_config("model.embed_noise=0.5", "model.conditioning=concat")


def test_mode_seeking_ratio_is_image_distance_over_noise_distance_between_pair_halves():
    from augment.losses import pair_spread_ratio

    z = torch.zeros(4, 2)
    z[2:] = 1.0  # each pair (i, i + 2) is 1 apart per noise coordinate
    fake = torch.zeros(4, 1, 2, 2)
    fake[2:] = 3.0  # and 3 apart per pixel
    assert pair_spread_ratio(fake, z, 2).item() == pytest.approx(3.0)
    fake[2:] = fake[:2]  # one image for two noises: the collapse the term penalises
    assert pair_spread_ratio(fake, z, 2).item() == 0.0


def test_mode_seeking_pairs_fake_labels_and_trains_with_its_ratio_logged(two_class_bars, tmp_path):
    from augment.train import fake_labels

    y = fake_labels(5, 7, True, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert len(y) == 7 and torch.equal(y[:3], y[4:])  # pairs (i, i + 4) share a class

    plain = train(two_class_bars, tiny_config("model.mode_seeking=0"), tmp_path / "plain")
    seeking = train(two_class_bars, tiny_config("model.mode_seeking=1"), tmp_path / "ms")
    assert not same_state(weights(plain.last_checkpoint)["generator"], weights(seeking.last_checkpoint)["generator"])
    rows = [json.loads(line) for line in (tmp_path / "ms" / "stats.jsonl").read_text().splitlines()]
    assert all(r["g_mode_ratio"] > 0 for r in rows)
    with pytest.raises(ConfigError, match="model.mode_seeking.*wgan-gp"):
        tiny_config("model.mode_seeking=1", "model.loss=wgan-gp", "model.variant=cgan")
    with pytest.raises(ConfigError, match="model.mode_seeking.*latent-smote"):
        tiny_config("model.mode_seeking=1", "model.variant=latent-smote")


def test_mode_seeking_auto_is_on_for_acgan_only_and_stronger_for_colour_at_64_px():
    from augment.train import mode_seeking_weight
    from augment.variants import ACGAN

    assert mode_seeking_weight(tiny_config().model, 1, 28) == ACGAN.auto_mode_seeking == 0.1
    assert mode_seeking_weight(tiny_config().model, 3, 32) == 0.1
    assert mode_seeking_weight(tiny_config().model, 3, 64) == ACGAN.auto_mode_seeking_rgb64 == 1.0
    assert mode_seeking_weight(tiny_config().model, 1, 64) == 0.1  # measured on colour only
    for other in ("model.arch=classic", "model.variant=cgan", "model.variant=latent-smote"):
        assert mode_seeking_weight(tiny_config(other).model, 3, 64) == 0.0, other
    assert mode_seeking_weight(tiny_config("model.mode_seeking=0").model, 3, 64) == 0.0


def test_r1_penalty_is_the_squared_gradient_norm_at_real_images():
    from augment.losses import r1_penalty

    w = torch.tensor([[[[1.0, -2.0], [0.5, 0.0]]]], requires_grad=True)  # a linear critic: its gradient is w
    real = torch.randn(5, 1, 2, 2)
    penalty = r1_penalty(lambda x: (x * w).flatten(1).sum(1), real)
    assert penalty.item() == pytest.approx(1 + 4 + 0.25)
    penalty.backward()  # it trains D: the penalty is differentiable in D's weights
    assert torch.allclose(w.grad, 2 * w.detach())


def test_acgan_projection_lets_the_label_move_the_real_fake_logit_but_not_the_class_head():
    from augment.models.backbone import Discriminator

    D = Discriminator(1, 8, 4, aux_classes=2, conditioning="projection", num_classes=2)
    x = torch.randn(3, 1, 8, 8)
    (logit0, cls0), (logit1, cls1) = D(x, torch.zeros(3, dtype=torch.long)), D(x, torch.ones(3, dtype=torch.long))
    assert not torch.allclose(logit0, logit1)
    assert torch.equal(cls0, cls1) and torch.equal(D(x)[1], cls0)  # reading classes needs no label


def test_r1_instead_of_spectral_norm_and_acgan_projection_are_settings_that_train(two_class_bars, tmp_path):
    plain = train(two_class_bars, tiny_config("model.spectral_norm=false"), tmp_path / "plain")
    r1 = train(two_class_bars, tiny_config("model.spectral_norm=false", "train.r1_weight=1", "train.r1_every=2"),
               tmp_path / "r1")
    assert not same_state(weights(plain.last_checkpoint)["discriminator"], weights(r1.last_checkpoint)["discriminator"])
    both = train(two_class_bars, tiny_config("model.acgan_projection=true"), tmp_path / "both")
    assert any(k.startswith("embed.") for k in weights(both.last_checkpoint)["discriminator"])
    with pytest.raises(ConfigError, match="model.acgan_projection"):
        tiny_config("model.acgan_projection=true", "model.variant=cgan")
    tiny_config("model.arch=classic")  # 'auto' (the default) asks nothing of the classic networks


def test_a_checkpoint_from_before_acgan_projection_rebuilds_without_it(two_class_bars, tmp_path):
    from augment.models import DataShape, get_variant
    from augment.models.backbone import model_config_for

    old = train(two_class_bars, tiny_config("model.acgan_projection=false"), tmp_path / "old")
    saved_d = weights(old.last_checkpoint)["discriminator"]
    # A checkpoint from before the setting: its config reads as the default, 'auto', which the weights settle
    model = model_config_for(tiny_config().model, saved_d)
    assert model.acgan_projection is False
    _, D = get_variant("acgan").build(model, DataShape(channels=1, size=8, num_classes=2))
    D.load_state_dict(saved_d)  # strict: no projection weights asked for
    assert model_config_for(tiny_config().model, weights(train(two_class_bars, tiny_config(), tmp_path / "new")
                                                         .last_checkpoint)["discriminator"]).acgan_projection is True
