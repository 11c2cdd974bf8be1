"""The scheduled path survives its scheduler: a flow run whose Prefect server goes away mid-training is
rerun against the restarted server and ends with the manifest of an uninterrupted run.

A real server (`prefect server start`, its own home and database under tmp_path, on a free localhost port)
is started, killed with SIGKILL while the flow trains, and started again.

    pytest -m slow tests/flows/test_server_loss.py -s
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest
from makers import make_image_folder

SETS = ["image.size=8", "model.latent_dim=8", "model.width=8", "train.steps=400", "train.batch_size=16",
        "train.checkpoint_every=25", "train.log_every=25", "score.external=logreg", "select.min_aux_prob=0.0",
        "select.min_ext_prob=0.0", "select.require_agreement=false", "train.threads=1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`prefect server start` on localhost with its own home and SQLite database, so that it can be killed
    and started again over the same state."""

    def __init__(self, home, port: int):
        self.port, self.proc = port, None
        self.env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                    "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home}/prefect.db",
                    "PREFECT_SERVER_UI_ENABLED": "false"}
        self.env.pop("PREFECT_API_URL", None)
        self.url = f"http://127.0.0.1:{port}/api"

    def start(self, timeout: float = 120) -> None:
        command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                   "--port", str(self.port), "--no-services"]
        self.proc = subprocess.Popen(command, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the Prefect server exited while starting"
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"no Prefect server on port {self.port} after {timeout} s")

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)  # the server and its workers: gone without a goodbye
        self.proc.wait()


def flow_command(data, out) -> list[str]:
    cmd = [sys.executable, "-m", "flows.augment_dataset", "--data", str(data), "--out", str(out)]
    for s in SETS:
        cmd += ["--set", s]
    return cmd


@pytest.mark.slow
def test_a_flow_run_whose_server_goes_away_ends_as_an_uninterrupted_run_when_rerun(tmp_path):
    data = make_image_folder(tmp_path / "ds", {"a": 24, "b": 8, "c": 4}, size=8)
    server = Server(tmp_path / "prefect-home", free_port())
    server.start()
    env = {**server.env, "PREFECT_API_URL": server.url, "TQDM_DISABLE": "1"}
    try:
        reference = tmp_path / "reference"
        done = subprocess.run(flow_command(data, reference), env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]

        out = tmp_path / "out"
        work = tmp_path / ".out.augment-work"
        run = subprocess.Popen(flow_command(data, out), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while not list(work.glob("train/*/checkpoints/ckpt-*.pt")) and time.monotonic() < deadline:
            assert run.poll() is None, run.stderr.read()[-3000:]
            time.sleep(0.1)
        server.kill()  # mid-training: the flow run's next call to the API finds nobody
        try:
            run.wait(timeout=120)
        except subprocess.TimeoutExpired:  # still waiting on the API: the worker would be lost with it
            run.kill()
            run.wait()
        assert not out.exists() or (out / "dataset.json").is_file()  # never half there

        server.start()  # the scheduler is back; the flow run is rerun, as a retry or the next schedule
        again = subprocess.run(flow_command(data, out), env=env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr[-3000:]
        pd.testing.assert_frame_equal(pd.read_parquet(out / "manifest.parquet"),
                                      pd.read_parquet(reference / "manifest.parquet"))
        assert not work.exists()
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.kill()
