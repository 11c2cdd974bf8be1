"""The scheduled path for real: a Prefect server, a process work pool, a deployment from this checkout's
prefect.yaml, a worker, a triggered run of augment-all on a tiny config, and its output on disk.
Every process started is stopped by its PID (process group)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from makers import TINY, make_image_folder

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_deployment_runs_on_a_process_worker(tmp_path):
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent))
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_WORKER_QUERY_SECONDS": "2",
           "AUGMENT_HOME": str(REPO)}
    make_image_folder(tmp_path / "ds", {"a": 5, "b": 2}, size=8)
    defaults = json.dumps(TINY).replace('":', '" =').replace("{", "{ ").replace("}", " }")
    config = tmp_path / "datasets.toml"
    config.write_text(f'out_root = "{tmp_path / "runs"}"\ndefaults = {defaults}\n'
                      f'[[datasets]]\nname = "tiny"\ndata = "{tmp_path / "ds"}"\n')
    logs = open(tmp_path / "processes.log", "w")
    procs = []
    try:
        procs.append(subprocess.Popen([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                      env=env, stdout=logs, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + 120
        while True:
            try:
                get(f"{api}/health")
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(1)
        run = lambda *args: subprocess.run([prefect, *args], env=env, cwd=REPO, check=True, capture_output=True,  # noqa: E731
                                           text=True, timeout=180)
        run("work-pool", "create", "augment-test", "--type", "process")
        run("--no-prompt", "deploy", "--prefect-file", "prefect.yaml", "--name", "nightly", "--pool", "augment-test")
        procs.append(subprocess.Popen([prefect, "worker", "start", "--pool", "augment-test"], env=env, cwd=tmp_path,
                                      stdout=logs, stderr=subprocess.STDOUT, start_new_session=True))
        out = run("deployment", "run", "augment-all/nightly", "--param", f"config_path={config}").stdout
        run_id = next(w for line in out.splitlines() if "UUID" in line for w in line.split() if w.count("-") == 4)
        deadline = time.monotonic() + 300
        while True:
            state = get(f"{api}/flow_runs/{run_id}")["state"]["type"]
            if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                break
            assert time.monotonic() < deadline, f"flow run still {state}"
            time.sleep(2)
        assert state == "COMPLETED", (tmp_path / "processes.log").read_text()[-3000:]
        latest = tmp_path / "runs" / "tiny" / "latest"
        assert (latest / "manifest.parquet").is_file() and (latest / "report.html").is_file()
    finally:
        for proc in reversed(procs):
            stop(proc)
        logs.close()
    assert all(p.poll() is not None for p in procs)
