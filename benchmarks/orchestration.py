"""Wall time of `augment_all` on a multi-dataset file, first run and rerun, and Prefect's overhead.

Runs the flow twice in this process against a temporary Prefect home (so the ephemeral server
holds only these runs) and a fresh output root, then reads the stage task runs back from Prefect.
Printed per run: flow wall time, the sum of the stage tasks' own run times (load, train, plan,
generate, score, export), and the orchestration overhead = wall - sum of stage times. The first
run's wall time also includes starting the temporary server (printed separately).

    python benchmarks/orchestration.py [--config data/datasets.example.toml]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import tomllib
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STAGES = {"load", "load-into-root", "train", "plan", "generate", "score", "export"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=ROOT / "data" / "datasets.example.toml")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="augment_orch_"))
    os.environ["PREFECT_HOME"] = str(tmp / "prefect-home")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no telemetry writes racing the runs
    text = args.config.read_text()
    data = tomllib.loads(text)
    data["out_root"] = str(tmp / "out")
    config = tmp / "datasets.toml"
    config.write_text(_to_toml(data))

    import torch  # after PREFECT_HOME is set
    from prefect import get_client

    from augment.provenance import package_versions
    from flows.augment_all import augment_all

    v = package_versions()
    print(f"# augment_all on {args.config.name} ({len(data['datasets'])} datasets); cpu {platform.machine()}, "
          f"{torch.get_num_threads()} threads, cuda {torch.cuda.is_available()}; torch {v['torch']}, "
          f"prefect {v['prefect']}", flush=True)
    walls = []
    for attempt in ("first run", "rerun"):
        t0 = time.time()
        state = augment_all(str(config), return_state=True)
        walls.append((attempt, t0, time.time(), state))
    import asyncio

    async def stage_seconds(t_from: float, t_to: float) -> dict[str, float]:
        from datetime import datetime

        from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterStartTime
        async with get_client() as client:
            runs = await client.read_task_runs(task_run_filter=TaskRunFilter(start_time=TaskRunFilterStartTime(
                after_=datetime.fromtimestamp(t_from, UTC),
                before_=datetime.fromtimestamp(t_to, UTC))), limit=200)
        out: dict[str, float] = {}
        for r in runs:
            name = r.name.rsplit("-", 1)[0]
            if name in STAGES:
                out[name] = out.get(name, 0.0) + r.total_run_time.total_seconds()
        return out

    for attempt, t0, t1, state in walls:
        stages = asyncio.run(stage_seconds(t0, t1))
        total = sum(stages.values())
        rows = state.result(raise_on_failure=False)
        print(f"\n{attempt}: {state.name}; wall {t1 - t0:.1f} s; stage tasks {total:.1f} s "
              f"({', '.join(f'{k} {v:.1f}' for k, v in sorted(stages.items()))}); orchestration overhead "
              f"{t1 - t0 - total:.1f} s")
        for r in rows:
            print(f"  {r['dataset']:12s} {r['status']:11s} {r['seconds']:7.1f} s")
    first, rerun = walls[0][2] - walls[0][1], walls[1][2] - walls[1][1]
    print(f"\nrerun / first run = {rerun:.1f} / {first:.1f} s = {rerun / first:.1%}")


def _to_toml(data: dict) -> str:
    """Just enough TOML for the example file's shape (tables, arrays of tables, inline values)."""
    import json

    def value(v):
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return json.dumps(v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, (dict, list))]
    for k, v in data.items():
        if isinstance(v, dict):
            lines += [f"[{k}]"] + [f"{a} = {value(b)}" for a, b in v.items()]
    for item in data.get("datasets", []):
        lines += ["[[datasets]]"] + [f"{a} = {value(b)}" for a, b in item.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
