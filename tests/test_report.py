import base64
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from augment.device import ALL_CORES
from augment.report import budget_line, threads_note


@pytest.fixture
def run(finished_run):
    return finished_run


def test_report_html_is_self_contained(run):
    html = (run / "report.html").read_text()
    assert "<h2>Counts</h2>" in html and "<table>" in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) >= 4 and not re.search(r'src="(?!data:)', html)  # nothing to fetch
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    md = (run / "report.md").read_text()
    for fig in re.findall(r"\]\((figures/[^)]+)\)", md):
        assert (run / fig).is_file()


def test_quality_table_says_how_often_the_judge_agrees_with_every_candidate(run):
    quality = pd.read_csv(run / "quality.csv").set_index("class")
    m = pd.read_parquet(run / "manifest.parquet")
    candidates = m[m.is_synthetic]
    agree = (candidates.ext_pred == candidates.label).groupby(candidates.class_name).mean()
    assert np.allclose(quality.loc[agree.index, "ext_accuracy_all_candidates"], agree)
    read_as_intended = (candidates.ext_pred == candidates.label).mean()
    assert np.isclose(quality.loc["all", "ext_accuracy_all_candidates"], read_as_intended)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(run, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    shot = tmp_path / "report.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2400"]
    subprocess.run([chromium, *flags, f"--screenshot={shot}", f"file://{run / 'report.html'}"], check=True,
                   capture_output=True, timeout=120)
    dom = subprocess.run([chromium, *flags, "--dump-dom", f"file://{run / 'report.html'}"], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    assert "Kept and rejected samples" in dom
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20  # text, tables and figures, not a blank page


def test_budget_line_reports_steps_and_the_judges_reading():
    quality = [{"class": "a", "ext_accuracy_all_candidates": 0.9},
               {"class": "all", "ext_accuracy_all_candidates": 0.951}]
    line = budget_line({"max_seconds": 120, "steps": 1400, "steps_planned": 3000}, quality)
    assert line == ("train.max_seconds = 120 bought 1,400 of 3,000 steps (stopped by the budget); the external "
                    "classifier reads 95.1% of all generated candidates as their class.")
    assert budget_line({"max_seconds": 0, "steps": 10}, quality) is None


def test_the_report_says_how_many_cpu_threads_trained(run):
    n = max(1, ALL_CORES - 1)  # train.threads = 'auto': all cores but one
    assert f"training on cpu with {n} CPU thread" in (run / "report.md").read_text()
    two_jobs = {"class-000": [[0.0, 1], [4.2, 2], [30.0, 1]], "class-001": [[0.0, 1], [4.1, 3]]}
    assert threads_note({"device": "cpu", "threads": two_jobs}) == " with 1-3 CPU threads"
    assert threads_note({"device": "cuda:0", "threads": {"all": [[0.0, 1]]}}) == ""
    assert threads_note({"device": "cpu"}) == ""  # a run recorded before threads were


def test_kept_and_rejected_samples_are_drawn_a_row_per_class_with_reasons(tmp_path):
    """Grey and colour candidates on disk: one figure row per class with synthetic rows; none without them."""
    from augment.report import plot_kept_rejected

    rows = []
    for c, mode in enumerate(["L", "RGB"]):
        for i in range(4):
            rel = f"{'images' if i < 2 else 'rejected'}/c{c}/{i}.png"
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.new(mode, (6, 6), 40 * i).save(tmp_path / rel)
            rows.append({"path": rel, "class_name": f"c{c}", "is_synthetic": True, "kept": i < 2, "rank": i,
                         "reject_reason": "" if i < 2 else "ext_prob"})
    manifest = pd.DataFrame(rows)
    assert plot_kept_rejected(tmp_path, manifest, tmp_path / "two.png")
    assert plot_kept_rejected(tmp_path, manifest[manifest["class_name"] == "c0"], tmp_path / "one.png")
    with Image.open(tmp_path / "two.png") as two, Image.open(tmp_path / "one.png") as one:
        assert two.height > one.height * 1.4
    assert not plot_kept_rejected(tmp_path, manifest.assign(is_synthetic=False), tmp_path / "none.png")
