"""kill -9 at random moments: the output is never half there, checkpoints never corrupt, and rerunning
the same command finishes with exactly the rows an uninterrupted run writes.

    pytest -m slow tests/test_kill.py -s          (AUGMENT_KILL_POINTS=20 for more kill points)
"""

import os
import random
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from makers import make_image_folder

SETS = ["image.size=8", "model.latent_dim=8", "model.width=8", "train.steps=300", "train.batch_size=16",
        "train.checkpoint_every=25", "train.log_every=25", "score.external=logreg", "select.min_aux_prob=0.0",
        "select.min_ext_prob=0.0", "select.require_agreement=false"]


def command(data, out):
    args = [sys.executable, "-m", "augment.cli", "run", "--data", str(data), "--out", str(out), "--quiet"]
    for s in SETS:
        args += ["--set", s]
    return args


def complete_or_absent(out) -> bool:
    """The contract: the output folder is either absent or a finished dataset."""
    if not out.exists():
        return True
    try:
        m = pd.read_parquet(out / "manifest.parquet")
    except Exception:  # noqa: BLE001
        return False
    return (out / "dataset.json").is_file() and all((out / p).is_file() for p in m["path"])


def checkpoints_load(work) -> bool:
    for path in work.rglob("ckpt-*.pt"):
        torch.load(path, weights_only=True)
    return True


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume(tmp_path):
    data = make_image_folder(tmp_path / "ds", {"a": 24, "b": 8, "c": 4}, size=8)
    reference = tmp_path / "reference"
    t0 = time.monotonic()
    subprocess.run(command(data, reference), check=True, capture_output=True, timeout=600)
    whole = time.monotonic() - t0  # kill moments are drawn within an uninterrupted run's length, on any machine

    out = tmp_path / "out"
    work = tmp_path / ".out.augment-work"
    rng = random.Random(0)
    points = int(os.environ.get("AUGMENT_KILL_POINTS", "6"))
    killed = 0
    for _ in range(points):
        proc = subprocess.Popen(command(data, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + rng.uniform(0.1, 0.6) * whole
        while proc.poll() is None and time.monotonic() < deadline:
            assert complete_or_absent(out)
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed += 1
        assert complete_or_absent(out)
        assert checkpoints_load(work)
        if out.exists():
            break
    final = subprocess.run(command(data, out), capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(out / "manifest.parquet"),
                                  pd.read_parquet(reference / "manifest.parquet"))
    assert not work.exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    print(f"\nkill -9 points survived: {killed} (uninterrupted run {whole:.1f} s); "
          "final manifest identical to the uninterrupted run's")
    assert killed >= 1
