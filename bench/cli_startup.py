#!/usr/bin/env python
"""How long ``jupyter dodo`` takes as a whole process: ``--help`` and ``tokens list``.

Each command runs ``--runs`` times (default 5) with this venv's ``jupyter-dodo``, against a
throwaway Jupyter config, data and runtime directory and an SQLite database made by the
first run; the medians are printed as ``cli_help_s=`` and ``cli_tokens_list_s=`` (goal:
under 1.5 s each on the project's machine), with the minimum and maximum beside them.
Nothing is asserted. Run from the repository root::

    .venv/bin/python bench/cli_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = Path(sys.executable).with_name("jupyter-dodo")


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per command")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "DODO_"))}
        env.update(
            JUPYTER_CONFIG_DIR=f"{tmp}/config",
            JUPYTER_DATA_DIR=f"{tmp}/data",
            JUPYTER_RUNTIME_DIR=f"{tmp}/runtime",
            DODO_DB_URL=f"sqlite:///{tmp}/dodo.sqlite",
        )
        commands = {
            "cli_help_s": [str(CLI), "--help"],
            "cli_tokens_list_s": [str(CLI), "tokens", "list"],
        }
        timed(commands["cli_tokens_list_s"], env)  # creates the database and key first
        for name, command in commands.items():
            times = [timed(command, env) for _ in range(args.runs)]
            print(f"{name}={statistics.median(times):.3f}")
            print(f"{name}_min={min(times):.3f}")
            print(f"{name}_max={max(times):.3f}")


if __name__ == "__main__":
    main()
