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
    assert len(set(meta["counts_after"].values())) == 1  # every class matches the largest
    m = pd.read_parquet(out / "manifest.parquet")
    assert (m.is_synthetic & m.kept).sum() == sum(meta["plan"].values())
    assert "Downstream check" in (out / "report.md").read_text()
