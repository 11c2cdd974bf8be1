"""Scheduled runs: the multi-dataset file, the run lock, the training and judge cache and per-run folders."""

import json
import os
import threading
import time

import pytest
from makers import make_image_folder, tiny_config

from augment.cache import TrainingCache, run_key, training_key
from augment.errors import ConfigError
from augment.layout import RunLayout
from augment.locking import RunLockedError, run_lock
from augment.scheduled import point_latest, read_jobs
from augment.stages import stage_load_into_root, stage_train


def test_example_file_reads(monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    jobs, cache, cache_max_bytes = read_jobs("data/datasets.example.toml")
    assert [j.name for j in jobs] == ["digits", "digits-lt"] and not any(j.error for j in jobs)
    assert jobs[0].config["balance"]["sampling_strategy"] == "target:250"
    assert jobs[1].config["train"]["steps"] == 1500  # from [defaults]
    assert cache.endswith("data/runs/nightly/.augment-cache") and cache_max_bytes == 20 * 10**9


def test_bad_dataset_settings_fail_that_dataset_only(tmp_path):
    f = tmp_path / "m.toml"
    f.write_text('[[datasets]]\nname = "a"\ndata = "digits"\nconfig = { train = { steps = -1 } }\n'
                 '[[datasets]]\nname = "b"\ndata = "digits"\n')
    jobs, *_ = read_jobs(f)
    assert "'train.steps' setting must be a positive integer" in jobs[0].error and jobs[1].error is None


@pytest.mark.parametrize("text, message", [
    ("out = 'x'\n", r"unknown top-level key\(s\) \['out'\]"),
    ("[[datasets]]\nname = 'a'\n", "needs 'name' and 'data'"),
    ("[[datasets]]\nname = '../a'\ndata = 'digits'\n", "must be a unique plain folder name"),
    ("[[datasets]]\nname = 'a'\ndata = 'digits'\n[[datasets]]\nname = 'a'\ndata = 'digits'\n", "unique"),
    ("seed = 1\n", r"unknown top-level"),
    ("cache_max_gb = 0\n[[datasets]]\nname = 'a'\ndata = 'digits'\n", r"cache_max_gb = 0; use a number"),
    ("cache_max_gb = '5'\n[[datasets]]\nname = 'a'\ndata = 'digits'\n", r"cache_max_gb = '5'"),
])
def test_bad_files_are_refused_by_name(tmp_path, text, message):
    f = tmp_path / "m.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_jobs(f)


def test_lock_excludes_a_second_run_and_recovers_from_a_dead_holder(tmp_path):
    lock = tmp_path / ".lock"
    with run_lock(lock):
        with pytest.raises(RunLockedError, match="Another run is writing"):
            with run_lock(lock, timeout=0.2, poll=0.05):
                pass
    assert not lock.exists()
    lock.write_text(json.dumps({"host": os.uname().nodename, "pid": 999999, "since": 0}))  # a killed run's
    with run_lock(lock, timeout=0):
        pass


def test_lock_waits_for_the_holder(tmp_path):
    lock, order = tmp_path / ".lock", []

    def holder():
        with run_lock(lock):
            order.append("first in")
            time.sleep(0.5)
            order.append("first out")

    t = threading.Thread(target=holder)
    t.start()
    time.sleep(0.1)
    with run_lock(lock, timeout=10, poll=0.05):
        order.append("second in")
    t.join()
    assert order == ["first in", "first out", "second in"]


def test_training_cache_is_reused_when_only_the_plan_changes(tmp_path):
    folder = make_image_folder(tmp_path / "ds", {"a": 5, "b": 2}, size=8)
    cache = tmp_path / "cache"
    first = stage_load_into_root(str(folder), tiny_config(), tmp_path / "root", "ds")
    assert not first["up_to_date"]
    trained = stage_train(tiny_config(), RunLayout.for_output(first["out"]), cache=cache)
    assert not trained["from_cache"] and TrainingCache(cache).has(trained["key"])
    other_plan = tiny_config('balance.sampling_strategy="target:4"')
    second = stage_load_into_root(str(folder), other_plan, tmp_path / "root", "ds")
    assert second["out"] != first["out"]  # another run key, another run folder
    again = stage_train(other_plan, RunLayout.for_output(second["out"]), cache=cache)
    assert again["from_cache"] and again["key"] == trained["key"]
    assert not (RunLayout.for_output(second["out"]).train_dir / "cache-entry.json").exists()  # the cache's own
    assert run_key("f", tiny_config()) != run_key("f", other_plan)
    assert training_key("f", tiny_config()) == training_key("f", other_plan)
    assert training_key("f", tiny_config()) != training_key("f", tiny_config("train.lr=0.0005"))
    assert training_key("f", tiny_config()) == training_key("f", tiny_config("train.log_every=7"))


@pytest.mark.parametrize("damage", ["truncated checkpoint", "no checksums (an older version)", "other version"])
def test_a_damaged_or_foreign_cache_entry_is_trained_again_never_loaded(tmp_path, damage):
    from augment.cache import SUMS

    folder = make_image_folder(tmp_path / "ds", {"a": 5, "b": 2}, size=8)
    cache, cfg = tmp_path / "cache", tiny_config()
    first = stage_load_into_root(str(folder), cfg, tmp_path / "root", "ds")
    key = stage_train(cfg, RunLayout.for_output(first["out"]), cache=cache)["key"]
    entry = TrainingCache(cache).entry(key)
    assert TrainingCache(cache).check(key) is None
    if damage == "truncated checkpoint":
        best = next(entry.rglob("best.pt"))
        best.write_bytes(best.read_bytes()[:100])
    elif damage == "other version":
        sums = json.loads((entry / SUMS).read_text())
        (entry / SUMS).write_text(json.dumps({**sums, "augment_version": "0.0.1"}))
    else:
        (entry / SUMS).unlink()
    other = tiny_config('balance.sampling_strategy="target:4"')  # same training, another run folder
    second = stage_load_into_root(str(folder), other, tmp_path / "root", "ds")
    again = stage_train(other, RunLayout.for_output(second["out"]), cache=cache)
    assert not again["from_cache"] and again["key"] == key  # trained again, and published afresh
    assert TrainingCache(cache).check(key) is None


def test_latest_pointer_moves_atomically(tmp_path):
    a, b = tmp_path / "ds" / "runs" / "a", tmp_path / "ds" / "runs" / "b"
    a.mkdir(parents=True)
    b.mkdir()
    link = point_latest(tmp_path, "ds", a)
    assert link.resolve() == a.resolve()
    point_latest(tmp_path, "ds", b)
    assert link.resolve() == b.resolve() and os.readlink(link) == "runs/b"


def _scored_run(folder, cfg, root, cache):
    """Load into the root, train, generate and score with the shared cache; the run's layout."""
    from augment.stages import stage_generate, stage_plan, stage_score

    layout = RunLayout.for_output(stage_load_into_root(str(folder), cfg, root, "ds")["out"])
    stage_train(cfg, layout, cache=cache)
    stage_plan(cfg, layout)
    stage_generate(cfg, layout, 0)
    stage_score(cfg, layout, cache=cache)
    return layout


@pytest.fixture
def judge_fits(monkeypatch):
    """One entry per SmallCNN fitted from here on (with the 'cnn' judge and no CAS, the judge's fits)."""
    from augment.score import cnn

    fits = []
    real_fit = cnn.train_cnn
    monkeypatch.setattr(cnn, "train_cnn", lambda *a, **k: fits.append(1) or real_fit(*a, **k))
    return fits


def test_the_external_judge_is_fitted_once_for_the_same_data(tmp_path, judge_fits):
    """The 'cnn' judge depends on the data alone: a rerun with other selection settings reads it from the
    cache (same features), where its GAN training comes from too."""
    from augment.atomic import read_json
    from augment.cache import judge_cache, judge_key
    from augment.data.labeled import LabeledImages
    from augment.score.candidates import external_key

    folder = make_image_folder(tmp_path / "ds", {"a": 6, "b": 5}, size=8)
    fits = judge_fits
    cache, cfg = tmp_path / "cache", tiny_config("score.external='cnn'", "score.external_steps=3")
    first = _scored_run(folder, cfg, tmp_path / "root", cache)
    other = tiny_config("score.external='cnn'", "score.external_steps=3", "select.min_aux_prob=0.0")
    second = _scored_run(folder, other, tmp_path / "root", cache)
    assert second.out != first.out and fits == [1]
    assert [read_json(r.selection)["external"]["from_cache"] for r in (first, second)] == [False, True]
    key = judge_key(LabeledImages.load(first.dataset).fingerprint, external_key(cfg))
    assert judge_cache(cache).check(key) is None
    assert second.external.read_bytes() == first.external.read_bytes()
    third = _scored_run(folder, tiny_config("score.external='cnn'", "score.external_steps=4"), tmp_path / "root",
                        cache)
    assert fits == [1, 1] and third.external.exists()  # another recipe: fitted again


def test_a_damaged_judge_in_the_cache_is_fitted_again_never_loaded(tmp_path, judge_fits):
    from augment.atomic import read_json

    folder = make_image_folder(tmp_path / "ds", {"a": 6, "b": 5}, size=8)
    cache, cfg = tmp_path / "cache", tiny_config("score.external='cnn'", "score.external_steps=3")
    _scored_run(folder, cfg, tmp_path / "root", cache)
    stored = next((cache / "judge").rglob("external.pt"))
    stored.write_bytes(stored.read_bytes()[:100])
    fits = judge_fits
    fits.clear()  # count the second run's fits only
    again = _scored_run(folder, tiny_config("score.external='cnn'", "score.external_steps=3",
                                            "select.min_aux_prob=0.0"), tmp_path / "root", cache)
    assert fits == [1] and again.external.stat().st_size > 100  # fitted afresh, and published again
    assert read_json(again.selection)["external"]["from_cache"] is False
    assert len(next((cache / "judge").rglob("external.pt")).read_bytes()) > 100


def _entry(cache: TrainingCache, key: str, tmp_path, size: int, used: float) -> None:
    """Publish a one-file entry of `size` bytes last used at `used` (seconds since the epoch)."""
    src = tmp_path / f"src-{key}"
    src.mkdir()
    (src / cache.done).write_bytes(b"x" * size)
    cache.publish(key, src)
    os.utime(cache.entry(key) / "cache-entry.json", (used, used))


def test_prune_removes_the_least_recently_used_entries_of_every_kind_down_to_the_bound(tmp_path):
    from augment.cache import prune

    train, judge = TrainingCache(tmp_path / "c"), TrainingCache(tmp_path / "c", "judge", "external.pt")
    _entry(train, "old", tmp_path, 4000, 1_000)
    _entry(judge, "mid", tmp_path, 4000, 2_000)
    _entry(train, "new", tmp_path, 4000, 3_000)
    assert train.restore("old", tmp_path / "restored")  # a hit counts as a use: "old" is now the newest
    assert prune(tmp_path / "c", 9000) == ["judge/mid"]
    assert train.has("old") and train.has("new") and not judge.has("mid")
    assert prune(tmp_path / "c", 5000) == ["train/new"] and train.has("old")
    killed, fresh = tmp_path / "c" / "train" / ".k.tmp-1-a", tmp_path / "c" / "train" / ".k.tmp-2-b"
    killed.mkdir(), fresh.mkdir()  # a publication killed two days ago, and one under way
    os.utime(killed, (time.time() - 2 * 86_400,) * 2)
    assert prune(tmp_path / "c", 5000) == [] and (tmp_path / "restored" / "result.json").is_file()
    assert sorted(p.name for p in (tmp_path / "c" / "train").iterdir()) == [fresh.name, "old"]


def test_an_entry_that_vanishes_while_it_is_restored_is_a_miss(tmp_path, monkeypatch):
    from augment import cache as cache_module

    train = TrainingCache(tmp_path / "c")
    _entry(train, "k", tmp_path, 10, 1_000)

    def pruned_meanwhile(src, dst):
        dst.mkdir()
        raise FileNotFoundError(2, "No such file or directory", str(src))

    monkeypatch.setattr(cache_module, "link_or_copy_tree", pruned_meanwhile)
    assert not train.restore("k", tmp_path / "dest")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "src-k"]  # no dest, no half-copied folder


def test_a_rerun_reuses_the_candidate_scores_of_the_same_gans_and_judge(tmp_path, monkeypatch):
    """A rerun with other selection settings generates the same candidates: their scores come from the
    cache, matched by content, and equal the first run's."""
    import pandas as pd

    from augment.atomic import read_json
    from augment.score import candidates

    scored = []
    real_score = candidates.score_candidates
    monkeypatch.setattr(candidates, "score_candidates",
                        lambda cand, rows, *rest: scored.append(len(rows)) or real_score(cand, rows, *rest))
    folder = make_image_folder(tmp_path / "ds", {"a": 6, "b": 3}, size=8)
    cache = tmp_path / "cache"
    last_round = "select.max_rounds=1"  # the round that publishes the run's scores
    first = _scored_run(folder, tiny_config(last_round), tmp_path / "root", cache)
    second = _scored_run(folder, tiny_config(last_round, "select.min_aux_prob=0.0"), tmp_path / "root", cache)
    n = len(pd.read_parquet(first.scores))
    assert second.out != first.out and n > 0 and scored == [n]  # the rerun scored nothing
    assert [read_json(r.selection)["scores_from_cache"] for r in (first, second)] == [0, n]
    columns = ["label", "latent_index", "aux_prob", "ext_prob", "realism", "nn_distance"]
    pd.testing.assert_frame_equal(pd.read_parquet(first.scores)[columns], pd.read_parquet(second.scores)[columns])


def test_a_cache_whose_entries_cannot_be_marked_used_still_restores(tmp_path, monkeypatch):
    """A read-only cache (shared, or another user's) cannot record a use; its entries still restore."""
    from pathlib import Path

    from augment import cache as cache_module

    train = TrainingCache(tmp_path / "c")
    _entry(train, "k", tmp_path, 10, 1_000)

    real_utime = os.utime

    def read_only(path, *args, **kwargs):  # the entry's record cannot be touched; copies elsewhere still can
        if Path(path).parent == train.entry("k"):
            raise PermissionError(13, "Read-only file system", str(path))
        return real_utime(path, *args, **kwargs)

    monkeypatch.setattr(cache_module.os, "utime", read_only)
    assert train.restore("k", tmp_path / "dest") and (tmp_path / "dest" / "result.json").is_file()
