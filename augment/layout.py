"""Where a run keeps its files: the hidden work folder beside the output (intermediate files, one
attribute each) and the output folder itself. Every stage names files through a `RunLayout`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

CANDIDATE_SCORES = "candidate_scores.npz"  # every candidate's scores (work folder, scores cache)
JUDGE_FILE = "external.pt"  # the fitted external classifier in its folder (work folder, judge cache)
GAN_DIR = "gan"  # in the output: no split word a Hugging Face loader would read (see output.hf_loading)


@dataclass(frozen=True)
class RunLayout:
    """A run's output folder `out` and its work folder `.<out name>.augment-work` beside it."""

    out: Path

    @classmethod
    def for_output(cls, out: str | Path) -> RunLayout:
        return cls(Path(out).absolute())

    # ------------------------------------------------------------ work folder (removed after export)

    @property
    def work(self) -> Path:
        return self.out.parent / f".{self.out.name}.augment-work"

    @property
    def run_json(self) -> Path:
        """Source, data fingerprint and training settings of the unfinished run (decides resume)."""
        return self.work / "run.json"

    @property
    def dataset(self) -> Path:
        """The validated `LabeledImages` every later stage reads."""
        return self.work / "dataset.npz"

    @property
    def plan(self) -> Path:
        """Synthetic images planned per class name."""
        return self.work / "plan.json"

    @property
    def train_dir(self) -> Path:
        """One folder per GAN (`all`, or `class-NNN` for unconditional variants) plus the stage's result."""
        return self.work / "train"

    @property
    def train_result(self) -> Path:
        return self.train_dir / "result.json"

    @property
    def aux_classifier(self) -> Path:
        return self.train_dir / "aux_classifier.pt"

    @property
    def stage_seconds(self) -> Path:
        """Wall seconds of each stage so far (`pipeline.timed`); dataset.json carries them."""
        return self.work / "stage_seconds.json"

    @property
    def candidates(self) -> Path:
        """Every generated candidate of every round (`Synthetic`)."""
        return self.work / "candidates.npz"

    @property
    def judge_dir(self) -> Path:
        """The fitted external classifier's folder (an entry of the judge cache, when a run has one)."""
        return self.work / "judge"

    @property
    def external(self) -> Path:
        """The fitted external classifier (cnn recipe), reused by every scoring round."""
        return self.judge_dir / JUDGE_FILE

    @property
    def candidate_scores(self) -> Path:
        """Scores of the candidates scored so far, keyed by the scorers that made them."""
        return self.work / CANDIDATE_SCORES

    @property
    def cached_scores(self) -> Path:
        """A cached run's candidate scores, restored for reuse by content (augment.cache.scores_cache)."""
        return self.work / "cached-scores" / CANDIDATE_SCORES

    @property
    def scores(self) -> Path:
        """Per candidate: scores, kept, reject_reason (the selection's result)."""
        return self.work / "scores.parquet"

    @property
    def selection(self) -> Path:
        """Kept and short per class, rejection counts, copy threshold, external classifier's report."""
        return self.work / "selection.json"

    @property
    def amount(self) -> Path:
        """The synthetic share used (chosen on held-out real images for 'auto'), its curve, and the candidates
        the share left out."""
        return self.work / "amount.json"

    def real_features(self, external_key: str) -> Path:
        """The real images' features in the feature space of the external classifier `external_key` names."""
        return self.work / f"real_features-{_short_hash(external_key)}.npy"

    def real_nn_distance(self, external_key: str) -> Path:
        """Each real image's distance to its nearest other real image, in that feature space."""
        return self.work / f"real_nn_distance-{_short_hash(external_key)}.npy"

    @property
    def lock(self) -> Path:
        """Held for the whole run, so that two runs never write the same output (augment.locking)."""
        return self.out.parent / f".{self.out.name}.lock"

    # ------------------------------------------------------------ output folder

    @property
    def out_meta(self) -> Path:
        return self.out / "dataset.json"

    @property
    def out_manifest(self) -> Path:
        return self.out / "manifest.parquet"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def scheduled_run_dir(out_root: str | Path, name: str, key: str) -> Path:
    """Where a scheduled run of dataset `name` with run key `key` lands: <out_root>/<name>/runs/<key[:16]>."""
    return Path(out_root) / name / "runs" / key[:16]
