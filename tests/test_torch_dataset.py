"""A finished run read through PyTorch: a Dataset whose items carry provenance, weighted sampling."""

import numpy as np
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

import augment


def test_a_finished_run_loads_as_a_dataset_with_provenance(finished_run):
    flat = lambda im: torch.from_numpy(np.asarray(im, dtype=np.float32).ravel())  # noqa: E731
    ds = augment.AugmentedImageFolder(finished_run, transform=flat)
    assert ds.classes == ["cat", "dog"]
    assert len(ds) == 12  # 6 cat + 3 dog real, 3 kept synthetic dog
    image, label, provenance = ds[len(ds) - 1]
    assert image.shape == (64,) and label == 1
    assert provenance["is_synthetic"] is True and provenance["generator"].startswith("acgan@")
    real = ds[0][2]
    assert real["is_synthetic"] is False and real["source_id"] and real["latent_index"] == -1


def test_rejected_rows_are_left_out_unless_asked_for(finished_run):
    assert len(augment.AugmentedImageFolder(finished_run, kept_only=False)) == 15


def test_a_weighted_sampler_over_the_dataset_draws_balanced_classes(finished_run):
    ds = augment.AugmentedImageFolder(finished_run, transform=lambda im: torch.zeros(1))
    sampler = WeightedRandomSampler(ds.weights, num_samples=2000, generator=torch.Generator().manual_seed(0))
    labels = torch.cat([batch[1] for batch in DataLoader(ds, batch_size=100, sampler=sampler)])
    assert abs(labels.float().mean().item() - 0.5) < 0.05
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert set(batch[2]) >= {"is_synthetic", "generator", "weight"}  # provenance collates by key


def test_real_weights_draw_only_real_images_for_the_first_phase_of_deferred_re_weighting(finished_run):
    ds = augment.AugmentedImageFolder(finished_run, transform=lambda im: torch.zeros(1))
    sampler = WeightedRandomSampler(ds.real_weights, num_samples=200, generator=torch.Generator().manual_seed(0))
    provenance = [batch[2] for batch in DataLoader(ds, batch_size=50, sampler=sampler)]
    assert not torch.cat([p["is_synthetic"] for p in provenance]).any()
    assert int(ds.real_weights.sum()) == 9  # 6 cat + 3 dog real images


def test_phase_samplers_give_deferred_re_weighting_in_one_line(finished_run):
    ds = augment.AugmentedImageFolder(finished_run, transform=lambda im: torch.zeros(1))
    phases = ds.phase_samplers(400, deferred=0.75, generator=torch.Generator().manual_seed(0))
    assert [(name, len(sampler)) for name, sampler in phases] == [("real", 300), ("weighted", 100)]
    first = torch.tensor([bool(ds.rows["is_synthetic"].iloc[i]) for i in phases[0][1]])
    assert not first.any()  # the plain phase draws real rows only
    assert [name for name, _ in ds.phase_samplers(50)] == ["weighted"]
