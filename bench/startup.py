#!/usr/bin/env python
"""What enabling dodo_jupyter costs a Jupyter server at start: time and memory.

For ``--runs`` runs (default 5), after one untimed warm-up pair, two ``jupyter server``
subprocesses are started one after the other on free 127.0.0.1 ports, in alternating
order (with/without, then without/with, ...): one WITHOUT the dodo_jupyter extension and
one WITH it. The configuration is otherwise identical: the other installed server
extensions (jupyterlab, jupyter_lsp, jupyter_server_terminals, notebook_shim) are
DISABLED in both (``--with-lab`` enables them in both instead). dodo runs with its
defaults (shipped default catalog on) on a SQLite store in the temp dir; the store is
created by the warm-up run, so timed runs open an existing store, as on every start but
the first (``--fresh-db`` gives every WITH run a new store: migrations and key creation).

Measured per run:

* startup: time from ``Popen`` to ``GET /api/status`` answering 200 (polled every 10 ms);
* for WITH runs, ``catalog_ready``: time from ``Popen`` to ``GET /dodo/api/mcp-catalog``
  answering 200 (dodo opens its store on a thread after the server starts);
* RSS (``VmRSS`` of the server process from ``/proc/<pid>/status``) when ready, and after
  one ``GET /dodo/api/mcp-catalog`` (WITH only, so the store is open) followed by one
  ``GET /api/status`` (both).

Printed: medians, ``startup_overhead_ms`` (goal <= 300) and ``rss_overhead_mb``
(after-request RSS, goal <= 40). Figures only; nothing is asserted. Every Jupyter
directory (config, data, runtime, HOME) is a temp dir, so ~/.jupyter is never touched.
Run from the repository root::

    /work/venv/bin/python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from _mcp_bench import exit_cleanly_on_sigterm, free_port, rss_mb, stop_process

REPO_ROOT = Path(__file__).resolve().parent.parent
try:
    import dodo_jupyter

    DODO_PATH = str(Path(dodo_jupyter.__file__).resolve().parent.parent)
except ImportError:
    DODO_PATH = str(REPO_ROOT)

OTHER_EXTENSIONS = (
    "jupyterlab",
    "jupyter_lsp",
    "jupyter_server_terminals",
    "notebook_shim",
    "jupyterlab_chat",
    "jupyter_ai_router",
    "jupyter_ai_persona_manager",
    "jupyter_ai_acp_client",
)
POLL_S = 0.01
READY_TIMEOUT_S = 60.0


@dataclass
class Run:
    with_dodo: bool
    startup_ms: float
    rss_ready_mb: float
    rss_after_mb: float
    catalog_ready_ms: float | None = None


def server_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("config", "data", "runtime"):
        (tmp / name).mkdir(exist_ok=True)
    env["JUPYTER_CONFIG_DIR"] = str(tmp / "config")
    env["JUPYTER_DATA_DIR"] = str(tmp / "data")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp / "runtime")
    env["HOME"] = str(tmp)
    # Both servers get the same PYTHONPATH so imports cost the same apart from dodo's.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (DODO_PATH, env.get("PYTHONPATH", "")) if p)
    env.pop("DODO_DB_URL", None)
    env.pop("DODO_CRYPT_KEY", None)
    return env


def write_config(path: Path, *, with_dodo: bool, with_lab: bool, db: Path) -> Path:
    extensions = {name: with_lab for name in OTHER_EXTENSIONS}
    extensions["dodo_jupyter"] = with_dodo
    config: dict[str, object] = {
        "ServerApp": {"jpserver_extensions": extensions, "open_browser": False},
    }
    if with_dodo:
        config["DodoApp"] = {
            "db_url": f"sqlite:///{db}",
            "key_file": str(db.parent / "crypt.key"),
        }
    path.write_text(json.dumps(config, indent=2))
    return path


def poll_200(
    client: httpx.Client, proc: subprocess.Popen[bytes], path: str, t_start: float
) -> float:
    """Poll ``path`` every POLL_S until it answers 200; ms since ``t_start``."""
    deadline = time.perf_counter() + READY_TIMEOUT_S
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter server exited early with code {proc.returncode}")
        try:
            if client.get(path).status_code == 200:
                return (time.perf_counter() - t_start) * 1000.0
        except httpx.TransportError:
            pass
        time.sleep(POLL_S)
    raise RuntimeError(f"{path} did not answer 200 within {READY_TIMEOUT_S:.0f} s")


def one_run(tmp: Path, *, with_dodo: bool, with_lab: bool, db: Path, tag: str) -> Run:
    config = write_config(tmp / f"config-{tag}.json", with_dodo=with_dodo, with_lab=with_lab, db=db)
    port = free_port()
    token = secrets.token_hex(24)
    cmd = [
        sys.executable,
        "-m",
        "jupyter_server",
        "--allow-root",
        "--no-browser",
        f"--config={config}",
        "--ServerApp.ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={tmp}",
    ]
    env = server_env(tmp)
    headers = {"Authorization": f"token {token}"}
    proc: subprocess.Popen[bytes] | None = None
    with (
        open(tmp / f"server-{tag}.log", "wb") as log,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=5.0) as client,
    ):
        try:
            t_start = time.perf_counter()
            proc = subprocess.Popen(
                cmd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            startup_ms = poll_200(client, proc, "/api/status", t_start)
            rss_ready = rss_mb(proc.pid)
            catalog_ms = None
            if with_dodo:
                catalog_ms = poll_200(client, proc, "/dodo/api/mcp-catalog", t_start)
            if client.get("/api/status").status_code != 200:
                raise RuntimeError("/api/status stopped answering 200")
            rss_after = rss_mb(proc.pid)
            return Run(with_dodo, startup_ms, rss_ready, rss_after, catalog_ms)
        finally:
            if proc is not None:
                stop_process(proc)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each kind")
    parser.add_argument(
        "--with-lab",
        action="store_true",
        help="enable jupyterlab & co. in both servers (default: disabled in both)",
    )
    parser.add_argument(
        "--fresh-db", action="store_true", help="give every WITH run a new, empty store"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server logs)")
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()

    tmp = Path(tempfile.mkdtemp(prefix="dodo-bench-startup-"))
    runs: list[Run] = []
    try:
        shared_db = tmp / "db" / "dodo.sqlite"
        # Untimed warm-up pair: fills the OS file cache, creates the shared store.
        for with_dodo in (True, False):
            one_run(tmp, with_dodo=with_dodo, with_lab=args.with_lab, db=shared_db, tag="warm")
        for i in range(max(1, args.runs)):
            order = (True, False) if i % 2 == 0 else (False, True)
            for with_dodo in order:
                db = tmp / f"db-{i}" / "dodo.sqlite" if args.fresh_db else shared_db
                run = one_run(
                    tmp,
                    with_dodo=with_dodo,
                    with_lab=args.with_lab,
                    db=db,
                    tag=f"{i}-{'with' if with_dodo else 'without'}",
                )
                runs.append(run)
                extra = (
                    f" catalog_ready={run.catalog_ready_ms:.0f} ms"
                    if run.catalog_ready_ms is not None
                    else ""
                )
                print(
                    f"run {i} {'with   ' if with_dodo else 'without'}: "
                    f"startup={run.startup_ms:.0f} ms rss_ready={run.rss_ready_mb:.1f} MB "
                    f"rss_after={run.rss_after_mb:.1f} MB{extra}"
                )
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    with_runs = [r for r in runs if r.with_dodo]
    without_runs = [r for r in runs if not r.with_dodo]
    lab = "enabled" if args.with_lab else "disabled"
    print(f"other server extensions (jupyterlab, ...): {lab} in both; runs={len(with_runs)}")
    figures = {}
    for name, group in (("without", without_runs), ("with", with_runs)):
        figures[name] = (
            median([r.startup_ms for r in group]),
            median([r.rss_ready_mb for r in group]),
            median([r.rss_after_mb for r in group]),
        )
        startup, ready, after = figures[name]
        print(
            f"{name}_startup_ms={startup:.0f} {name}_rss_ready_mb={ready:.1f} "
            f"{name}_rss_after_request_mb={after:.1f}"
        )
    catalog_ready = median([r.catalog_ready_ms for r in with_runs if r.catalog_ready_ms])
    print(f"with_catalog_ready_ms={catalog_ready:.0f} (Popen to first 200 from mcp-catalog)")
    print(f"startup_overhead_ms={figures['with'][0] - figures['without'][0]:.0f} (goal <= 300)")
    print(
        f"rss_overhead_ready_mb={figures['with'][1] - figures['without'][1]:.1f} "
        "(before the store opens)"
    )
    print(f"rss_overhead_mb={figures['with'][2] - figures['without'][2]:.1f} (goal <= 40)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
