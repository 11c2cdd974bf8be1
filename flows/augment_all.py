"""Prefect flow: every dataset of a multi-dataset TOML file, one `augment-dataset` subflow each.

    python -m flows.augment_all --config data/datasets.example.toml

A failure in one dataset does not stop the others; the flow ends Failed when any failed, and a
table artifact (`augment-all`) says which succeeded, which failed and why. Device work is
serialised per machine by a kernel file lock that dies with its holder (`augment.device_slots`; one
at a time unless `AUGMENT_DEVICE_SLOTS=N`). Trainings are cached under
the file's `cache` folder (default <out_root>/.augment-cache), so a rerun over unchanged data and
settings finds every output up to date and a change of plan or selection only regenerates; after the
datasets, the cache is pruned to `cache_max_gb` (least recently used entries first).
"""

from __future__ import annotations

import argparse
import sys
import time

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import Completed, Failed

from augment.cache import prune
from augment.errors import AugmentError
from augment.scheduled import read_jobs
from flows.augment_dataset import augment_dataset


@flow(name="augment-all")
def augment_all(config_path: str):
    """Run every dataset listed in `config_path`; returns a per-dataset status list."""
    logger = get_run_logger()
    jobs, cache, cache_max_bytes = read_jobs(config_path)
    rows = []
    for job in jobs:
        t0 = time.perf_counter()
        if job.error:
            rows.append({"dataset": job.name, "status": "failed", "why": job.error, "out": None, "seconds": 0.0})
            logger.error("%s: not run, bad settings: %s", job.name, job.error)
            continue
        state = augment_dataset.with_options(flow_run_name=f"augment-{job.name}")(
            job.data, config=job.config, out_root=job.out_root, name=job.name, cache=cache,
            inputs=[config_path], return_state=True)
        seconds = round(time.perf_counter() - t0, 1)
        if state.is_completed():
            s = state.result()
            status = "up to date" if s.get("up_to_date") else "done"
            rows.append({"dataset": job.name, "status": status, "why": "", "out": s["out"], "seconds": seconds,
                         "kept": sum(s["kept"].values()), "short": sum(s["shortfall"].values())})
            logger.info("%s: %s in %.1f s -> %s", job.name, status, seconds, s["out"])
        else:
            try:
                state.result()
                why = state.message or state.name
            except Exception as exc:  # noqa: BLE001  report every kind of failure, keep going
                why = f"{type(exc).__name__}: {exc}"
            rows.append({"dataset": job.name, "status": "failed", "why": why, "out": None, "seconds": seconds})
            logger.error("%s: failed after %.1f s: %s", job.name, seconds, why)
    create_table_artifact(rows, key="augment-all", description=f"datasets of {config_path}")
    removed = prune(cache, cache_max_bytes)
    if removed:
        logger.info("training cache over %.1f GB: %d least recently used entries removed", cache_max_bytes / 1e9,
                    len(removed))
    failed = [r["dataset"] for r in rows if r["status"] == "failed"]
    if failed:
        return Failed(message=f"{len(failed)} of {len(rows)} dataset(s) failed: {', '.join(failed)}", data=rows)
    return Completed(message=f"{len(rows)} dataset(s) done", data=rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m flows.augment_all", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, metavar="FILE.toml")
    args = p.parse_args(argv)
    try:
        read_jobs(args.config)  # fail fast, before a server starts, on a file that cannot be read
    except AugmentError as exc:
        print(f"augment: error: {exc}", file=sys.stderr)
        return 2
    state = augment_all(args.config, return_state=True)
    rows = state.result(raise_on_failure=False)
    if isinstance(rows, list):
        for r in rows:
            print(f"{r['dataset']:24s} {r['status']:11s} {r['seconds']:8.1f} s  {r['out'] or r['why']}")
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main())
