"""Mixing sources: head context with tail content, labelled as the tail (augment.mixing), as benchmark
arms and as the 'remix' and 'cutmix' variants that run through the pipeline with both parents recorded."""

import numpy as np
import pandas as pd
import pytest
import torch
from makers import KEEP_ALL, make_image_folder, tiny_config

from augment.mixing import CUTMIX_AREA, REMIX_SHARE, blend, fill_quota, mix
from augment.models import DataShape, get_variant
from augment.pipeline import run_pipeline


def two_tone(n_head=30, n_tail=4, size=8):
    """Head images all 0, tail images all 200: a mixed pixel says which parent it came from."""
    x = np.concatenate([np.zeros((n_head, 1, size, size), np.uint8), np.full((n_tail, 1, size, size), 200, np.uint8)])
    return x, np.array([0] * n_head + [1] * n_tail)


def test_remix_puts_more_than_half_of_the_tail_image_over_head_context():
    x, y = two_tone()
    made = mix("remix", x, y, {1: 50}, seed=0)
    assert (made.labels == 1).all() and (y[made.content] == 1).all() and (y[made.context] == 0).all()
    assert REMIX_SHARE[0] <= made.content_share.min() and made.content_share.max() <= REMIX_SHARE[1]
    expected = np.rint(200 * made.content_share)
    assert np.abs(made.images.reshape(50, -1).mean(1) - expected).max() <= 1


def test_cutmix_pastes_one_box_of_the_tail_image_covering_the_stated_area():
    x, y = two_tone(size=16)
    made = mix("cutmix", x, y, {1: 40}, seed=1)
    pasted = (made.images[:, 0] == 200)
    assert np.allclose(pasted.mean(axis=(1, 2)), made.content_share)
    assert CUTMIX_AREA[0] - 0.1 <= made.content_share.min() and made.content_share.max() <= CUTMIX_AREA[1] + 0.1
    rows, cols = pasted.any(2), pasted.any(1)  # a box: its rows and columns are contiguous runs
    assert all(np.ptp(np.flatnonzero(r)) + 1 == r.sum() for r in rows)
    assert all(np.ptp(np.flatnonzero(c)) + 1 == c.sum() for c in cols)


def test_noise_control_has_no_parents_and_the_data_statistics():
    x = np.random.default_rng(0).integers(0, 256, (40, 1, 8, 8)).astype(np.uint8)
    y = np.array([0] * 36 + [1] * 4)
    made = mix("noise", x, y, fill_quota(y), seed=0)
    assert len(made.labels) == 32 and (made.context == -1).all()
    assert abs(made.images.mean() - x.mean()) < 8


def test_mixing_is_seeded_and_the_quota_caps_at_a_ratio():
    x, y = two_tone()
    assert fill_quota(y) == {1: 26} and fill_quota(y, ratio=2) == {1: 8}
    a, b = mix("remix", x, y, {1: 5}, seed=3), mix("remix", x, y, {1: 5}, seed=3)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.context, b.context)
    with pytest.raises(ValueError, match="unknown mixing kind 'blur'"):
        mix("blur", x, y, {1: 5}, seed=0)


def test_blend_is_the_same_on_uint8_and_float_inputs():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randint(0, 256, (6, 3, 8, 8), generator=g), torch.randint(0, 256, (6, 3, 8, 8), generator=g)
    u = torch.rand(6, 4, generator=g)
    for kind in ("remix", "cutmix"):
        as_bytes = blend(kind, a.to(torch.uint8), b.to(torch.uint8), u)[0]
        assert torch.equal(as_bytes, blend(kind, a.float(), b.float(), u)[0])


@pytest.mark.parametrize("kind", ["remix", "cutmix"])
def test_the_mixing_generator_takes_content_of_the_class_and_context_of_others(kind):
    x, y = two_tone(n_head=20, n_tail=5)
    G, _ = get_variant(kind).build(tiny_config(f"model.variant={kind}", "model.latent_dim=6").model,
                                   DataShape(1, 8, 2))
    G.set_images(torch.from_numpy(x), torch.from_numpy(y))
    z = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
    tail = torch.ones(64, dtype=torch.long)
    p = G.provenance(z, tail)
    assert (y[p["context_row"].numpy()] == 0).all() and (y[p["content_row"].numpy()] == 1).all()
    assert torch.equal(G(z, tail), G(z, tail))  # latent i always gives the same image
    assert len(set(p["content_row"].tolist())) == 5  # every tail image gets used


@pytest.mark.parametrize("kind", ["remix", "cutmix"])
def test_a_mixing_variant_runs_end_to_end_with_both_parents_in_the_manifest(kind, tmp_path):
    folder = make_image_folder(tmp_path / "ds", {"cat": 6, "dog": 3}, size=8)
    run_pipeline(str(folder), tiny_config(f"model.variant={kind}", "model.latent_dim=6", *KEEP_ALL), tmp_path / "out")
    m = pd.read_parquet(tmp_path / "out" / "manifest.parquet")
    real, syn = m[~m["is_synthetic"]], m[m["is_synthetic"] & m["kept"]]
    cls = dict(zip(real["source_id"], real["class_name"]))
    assert len(syn) == 3 and (syn["class_name"] == "dog").all()
    assert [cls[s] for s in syn["mix_content"]] == ["dog"] * 3 and [cls[s] for s in syn["mix_context"]] == ["cat"] * 3
    assert syn["mix_share"].between(0.25, 1).all() and real["mix_content"].eq("").all()
    assert syn["generator"].str.startswith(f"{kind}@").all()


def test_mixing_variants_need_six_latent_coordinates_and_two_classes(tmp_path):
    from augment.errors import ConfigError

    with pytest.raises(ConfigError, match="model.latent_dim must be >= 6"):
        tiny_config("model.variant=remix", "model.latent_dim=4")
    folder = make_image_folder(tmp_path / "one", {"only": 5}, size=8)
    with pytest.raises(ConfigError, match="needs at least 2 classes"):
        run_pipeline(str(folder), tiny_config("model.variant=cutmix", "model.latent_dim=6"), tmp_path / "out")
