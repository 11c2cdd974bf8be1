import json
import subprocess
import sys

import pandas as pd
import pytest


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    """`augment demo` as a user runs it: digits-LT in, a balanced dataset and a downstream table out."""
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "augment.cli", "demo", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "augmented" in proc.stdout and "random oversampling" in proc.stdout and "smote" in proc.stdout
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["counts_before"]["0"] > 15 * meta["counts_before"]["9"]
    assert not meta["shortfall"]
    assert "Synthetic share:" in proc.stdout and meta["synthetic_share"]["reason"] in proc.stdout
    m = pd.read_parquet(out / "manifest.parquet")
    kept = (m.is_synthetic & m.kept).groupby(m.class_name).sum()
    assert all(meta["counts_after"][c] == meta["counts_before"][c] + kept.get(c, 0) for c in meta["class_names"])
    weights = m.groupby("class_name")["weight"].sum()
    assert weights.max() - weights.min() < 1e-6  # the classes are balanced, by images or by weights
    report = (out / "report.md").read_text()
    assert "Downstream check" in report and "Synthetic share" in report
