"""The score stage keeps the scores of earlier rounds' candidates and scores only a top-up round's new ones."""

import pandas as pd
import pytest
from makers import make_image_folder, tiny_config

from augment.generate import Synthetic
from augment.layout import RunLayout
from augment.score import candidates
from augment.stages import stage_generate, stage_load, stage_score, stage_train


@pytest.fixture
def scored_round_0(tmp_path, monkeypatch):
    """A run whose round 0 is generated and scored, with nothing kept (so a top-up round follows),
    and a record of the candidate rows each later scoring computes."""
    folder = make_image_folder(tmp_path / "ds", {"cat": 6, "dog": 3}, size=8)
    cfg = tiny_config("select.min_aux_prob=1.0", "select.max_rounds=2")
    layout = RunLayout.for_output(tmp_path / "out")
    stage_load(str(folder), cfg, layout)
    stage_train(cfg, layout)
    stage_generate(cfg, layout, 0)
    stage_score(cfg, layout)
    scored = []
    score = candidates.score_candidates
    monkeypatch.setattr(candidates, "score_candidates",
                        lambda cand, rows, *rest: scored.append(rows.tolist()) or score(cand, rows, *rest))
    return cfg, layout, scored


def test_a_top_up_round_scores_only_its_new_candidates(scored_round_0):
    cfg, layout, scored = scored_round_0
    round_0 = len(Synthetic.load(layout.candidates))
    stage_generate(cfg, layout, 1)
    stage_score(cfg, layout)
    incremental = pd.read_parquet(layout.scores)
    n = len(incremental)
    # only new rows; one whose pixels repeat an earlier candidate's of its class (a tiny GAN draws some
    # twice) takes that one's scores
    assert n > round_0 and len(scored) == 1 and scored[0] and min(scored[0]) >= round_0
    layout.candidate_scores.unlink()
    stage_score(cfg, layout)  # everything again, from scratch
    assert scored[1] == list(range(n))
    pd.testing.assert_frame_equal(incremental, pd.read_parquet(layout.scores), check_exact=False, rtol=1e-5)


def test_a_candidate_whose_pixels_changed_is_scored_again(scored_round_0):
    """Scores follow content: with one candidate's image changed, that one alone is scored again."""
    cfg, layout, scored = scored_round_0
    cand = Synthetic.load(layout.candidates)
    before = pd.read_parquet(layout.scores)
    cand.images[2] = 255 - cand.images[2]  # no other candidate looks like this
    cand.save(layout.candidates)
    stage_score(cfg, layout)
    after = pd.read_parquet(layout.scores)
    assert scored == [[2]] and after["ext_prob"][2] != before["ext_prob"][2]
    others = after.index != 2
    pd.testing.assert_frame_equal(after[others][["ext_prob", "realism"]], before[others][["ext_prob", "realism"]])


def test_scores_of_another_external_classifier_are_not_reused(scored_round_0):
    cfg, layout, scored = scored_round_0
    assert cfg.score.external == "logreg"
    cnn = tiny_config("select.min_aux_prob=1.0", "select.max_rounds=2", "score.external=cnn", "score.external_steps=5")
    stage_score(cnn, layout)
    everything = list(range(len(Synthetic.load(layout.candidates))))
    assert scored == [everything]
    stage_score(cfg, layout)  # back to the logreg: the cnn's scores are not reused either
    assert scored == [everything, everything]


def test_coverage_rank_measures_candidates_against_every_real_image_of_their_class(scored_round_0, monkeypatch):
    cfg, layout, _ = scored_round_0
    from augment.data.labeled import LabeledImages
    from augment.stages import score as score_stage
    seen = {}
    real_select = score_stage.select
    monkeypatch.setattr(score_stage, "select", lambda *a, **kw: seen.update(kw) or real_select(*a, **kw))
    permissive = ("select.min_aux_prob=0", "select.min_ext_prob=0", "select.require_agreement=false",
                  "select.reject_copies=false", "select.reject_duplicates=false")
    stage_score(tiny_config(*permissive, "select.rank=coverage"), layout)
    data = LabeledImages.load(layout.dataset)
    assert seen["real_features"].shape[0] == len(data) == 9
    assert seen["real_labels"].tolist() == data.labels.tolist()
    kept = pd.read_parquet(layout.scores).query("kept")
    assert len(kept) and sorted(kept.groupby("label")["rank"].min().unique()) == [0]
