"""Serve `augment-all` on a cron schedule from this machine: no work pool or worker needed.

    python -m flows.serve --config data/datasets.example.toml [--cron "0 2 * * *"]

Runs until stopped (Ctrl-C); each scheduled run executes here, in this process's environment.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flows.augment_all import augment_all


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m flows.serve", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, metavar="FILE.toml")
    p.add_argument("--cron", default="0 2 * * *", help="schedule, cron syntax (default: 02:00 every day)")
    p.add_argument("--name", default="nightly-local")
    args = p.parse_args(argv)
    augment_all.serve(name=args.name, cron=args.cron, parameters={"config_path": str(Path(args.config).resolve())})


if __name__ == "__main__":
    main()
