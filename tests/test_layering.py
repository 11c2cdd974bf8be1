import subprocess
import sys
from pathlib import Path


def test_importing_augment_does_not_import_prefect():
    code = ("import sys, augment, augment.pipeline, augment.cli, augment.demo; "
            "bad = sorted(m for m in sys.modules if m == 'prefect' or m.startswith(('prefect.', 'flows')));"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_augment_sources_never_mention_flows_or_prefect_imports():
    root = Path(__file__).resolve().parents[1] / "augment"
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert "import prefect" not in text and "from prefect" not in text, path
        assert "from flows" not in text and "import flows" not in text, path
