#!/usr/bin/env python
"""REST latency of the catalog endpoint, and gateway-token authentication cost.

Part 1 (over HTTP, a real server): a ``jupyter server`` subprocess with the dodo_jupyter
extension enabled (jupyterlab and the other installed server extensions disabled) listens
on a free 127.0.0.1 port. Before it starts, its SQLite store is created and seeded with
``--entries`` (default 500) approved entries through ``DodoRuntime`` / ``CatalogService``
in this process. After a warm-up, ``--n`` requests each of ``GET /api/status`` (the
baseline: jupyter_server's cheapest authenticated API) and ``GET /dodo/api/mcp-catalog``
are sent over one keep-alive ``httpx.Client``, alternating in blocks of ``--block``
requests so both see the same machine conditions. Printed: p50/p95 of each and
``catalog_p50_ratio`` = catalog p50 / status p50. Goal: ratio <= 2.0.

The endpoint serves a cached, pre-serialized body (``DodoApp.catalog_cache_ttl``, 5 s by
default), and the HTTP run is shorter than that, so it measures the cached path. What a
cache expiry costs is printed separately: ``catalog_uncached_build_*`` times
``CatalogService.enabled()`` in-process with the cache dropped before each call.

Part 2 (in-process): ``--tokens`` (default 10,000) gateway tokens are stored (rows written
with SQLAlchemy, hashed exactly like ``dodo_jupyter.tokens``), then
``TokenService.authenticate`` is timed for ``--samples`` (default 1000) random valid
tokens, through the real thread-pool database path (in-process: the same call the
gateway's authentication makes). Three figures:

* ``token_auth_first_use_*``: each sampled token is used for the first time, so
  authentication also writes ``last_used_at`` (a write transaction);
* ``token_auth_*`` (the headline): the same tokens used again within
  ``LAST_USED_RESOLUTION`` with the token cache off, the database read a check costs
  when the cache has nothing (the first call, or after its max age);
* ``token_auth_cached_*``: the same again from ``TokenCache``, what a busy agent pays.

Figures are printed only; nothing is asserted. Run from the repository root::

    /work/venv/bin/python bench/api_latency.py [--n 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert as insert_stmt

REPO_ROOT = Path(__file__).resolve().parent.parent
# This checkout's code, not an older installed copy (the server subprocess gets it too).
sys.path.insert(0, str(REPO_ROOT))

from _mcp_bench import (  # noqa: E402
    OTHER_EXTENSIONS,
    exit_cleanly_on_sigterm,
    free_port,
    percentile,
    stop_process,
    wait_http,
)

from dodo_jupyter.identity import make_resolver  # noqa: E402
from dodo_jupyter.runtime import DodoRuntime  # noqa: E402
from dodo_jupyter.runtime_settings import RuntimeSettings  # noqa: E402
from dodo_jupyter.store.models import UserMCPToken, utcnow  # noqa: E402
from dodo_jupyter.tokens import TOKEN_PREFIX, _hash  # noqa: E402


def make_runtime(db_url: str, key_file: Path) -> DodoRuntime:
    settings = RuntimeSettings(db_url=db_url, key_file=key_file, default_catalog=False)
    return DodoRuntime(settings, make_resolver("local"))


def seed_catalog(db_url: str, key_file: Path, count: int) -> None:
    """Create the store and add ``count`` entries with one import (one transaction)."""
    runtime = make_runtime(db_url, key_file)
    runtime.open_sync()
    entries = [
        {
            "id": f"e{i}",
            "url": f"https://e{i}.example.com/mcp",
            "display_name": f"Example server {i}",
            "description": f"Benchmark entry number {i}",
        }
        for i in range(count)
    ]
    try:
        asyncio.run(runtime.catalog.import_document("bench", {"entries": entries}))
    finally:
        runtime.store.close()


def server_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("config", "data", "runtime"):
        (tmp / name).mkdir(exist_ok=True)
    env["JUPYTER_CONFIG_DIR"] = str(tmp / "config")
    env["JUPYTER_DATA_DIR"] = str(tmp / "data")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp / "runtime")
    env["HOME"] = str(tmp)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("DODO_DB_URL", None)
    env.pop("DODO_CRYPT_KEY", None)
    return env


def write_config(tmp: Path, db_url: str, key_file: Path) -> Path:
    extensions: dict[str, bool] = {name: False for name in OTHER_EXTENSIONS}
    extensions["dodo_jupyter"] = True
    config = {
        "ServerApp": {"jpserver_extensions": extensions, "open_browser": False},
        "DodoApp": {"db_url": db_url, "key_file": str(key_file), "default_catalog": False},
    }
    path = tmp / "server_config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def start_server(tmp: Path, config: Path, port: int, token: str) -> subprocess.Popen[bytes]:
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
    with open(tmp / "server.log", "wb") as log:  # the child keeps its own copy of the fd
        return subprocess.Popen(
            cmd,
            env=server_env(tmp),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def timed_get(client: httpx.Client, path: str) -> float:
    t0 = time.perf_counter()
    response = client.get(path)
    elapsed = time.perf_counter() - t0
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code}: {response.text[:200]}")
    return elapsed * 1000.0


def measure_http(client: httpx.Client, n: int, block: int, warmup: int) -> dict[str, list[float]]:
    paths = {"status": "/api/status", "catalog": "/dodo/api/mcp-catalog"}
    for _ in range(warmup):
        for path in paths.values():
            timed_get(client, path)
    samples: dict[str, list[float]] = {name: [] for name in paths}
    order = list(paths)
    blocks = 0
    while any(len(v) < n for v in samples.values()) and blocks < 4 * n:
        for name in order:
            for _ in range(min(block, n - len(samples[name]))):
                samples[name].append(timed_get(client, paths[name]))
        order.reverse()  # ABBA ordering so neither side always runs first
        blocks += 1
    return samples


def measure_uncached_catalog(db_url: str, key_file: Path, samples: int) -> list[float]:
    """Time ``CatalogService.enabled()`` with its cache dropped (what a TTL expiry costs)."""
    runtime = make_runtime(db_url, key_file)
    runtime.open_sync()

    async def run() -> list[float]:
        out: list[float] = []
        for _ in range(samples + 5):
            runtime.catalog.cache.invalidate()
            t0 = time.perf_counter()
            await runtime.catalog.enabled()
            out.append((time.perf_counter() - t0) * 1000.0)
        return out[5:]

    try:
        return asyncio.run(run())
    finally:
        runtime.store.close()


def store_tokens(runtime: DodoRuntime, count: int, username: str) -> list[str]:
    """Write ``count`` token rows the way TokenService.create does; return the tokens."""
    now = utcnow()
    tokens: list[str] = []
    rows: list[dict[str, Any]] = []
    for i in range(count):
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        tokens.append(f"{TOKEN_PREFIX}{token_id}_{secret}")
        rows.append(
            {
                "id": token_id,
                "username": f"{username}{i % 50}",
                "secret_hash": _hash(secret),
                "label": f"bench {i}",
                "kind": "user",
                "created_at": now,
                "last_used_at": None,
                "expires_at": None,
            }
        )

    def insert(session: Any) -> None:
        session.execute(insert_stmt(UserMCPToken), rows)

    runtime.store.db.write_sync(insert)
    return tokens


async def time_auth(runtime: DodoRuntime, tokens: list[str]) -> list[float]:
    out: list[float] = []
    for token in tokens:
        t0 = time.perf_counter()
        user = await runtime.tokens.authenticate(token)
        out.append((time.perf_counter() - t0) * 1000.0)
        if user is None:
            raise RuntimeError("a valid token did not authenticate")
    return out


def measure_tokens(tmp: Path, count: int, samples: int) -> dict[str, list[float]]:
    db_url = f"sqlite:///{tmp / 'tokens.sqlite'}"
    runtime = make_runtime(db_url, tmp / "tokens.key")
    runtime.open_sync()
    try:
        tokens = store_tokens(runtime, count, "user")
        rng = random.Random(1234)
        chosen = rng.sample(tokens, min(samples, len(tokens)))

        async def run() -> dict[str, list[float]]:
            await time_auth(runtime, rng.sample(tokens, min(20, len(tokens))))  # warm-up
            first = await time_auth(runtime, chosen)
            again = [rng.choice(chosen) for _ in range(samples)]
            runtime.tokens.cache.max_age = 0.0  # every check reads the database
            from_db = await time_auth(runtime, again)
            runtime.tokens.cache.max_age = 5.0
            cached = await time_auth(runtime, again)
            return {"first_use": first, "steady": from_db, "cached": cached}

        return asyncio.run(run())
    finally:
        runtime.store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="requests per endpoint")
    parser.add_argument("--block", type=int, default=25, help="requests per interleaved block")
    parser.add_argument("--warmup", type=int, default=50, help="warm-up requests per endpoint")
    parser.add_argument("--entries", type=int, default=500, help="catalog entries to seed")
    parser.add_argument("--tokens", type=int, default=10_000, help="tokens to store")
    parser.add_argument("--samples", type=int, default=1000, help="authentications to time")
    parser.add_argument(
        "--uncached", type=int, default=30, help="uncached catalog builds to time in-process"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server log)")
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()

    tmp = Path(tempfile.mkdtemp(prefix="dodo-bench-api-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        db_url = f"sqlite:///{tmp / 'dodo.sqlite'}"
        key_file = tmp / "crypt.key"
        t0 = time.perf_counter()
        seed_catalog(db_url, key_file, args.entries)
        print(f"seeded {args.entries} entries in {time.perf_counter() - t0:.2f} s")

        port = free_port()
        token = secrets.token_hex(24)
        proc = start_server(tmp, write_config(tmp, db_url, key_file), port, token)
        headers = {"Authorization": f"token {token}"}
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30.0
        ) as client:
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/api/status", proc, headers=headers)
            wait_http(f"{base}/dodo/api/mcp-catalog", proc, headers=headers)
            served = len(client.get("/dodo/api/mcp-catalog").json()["entries"])
            body = len(client.get("/dodo/api/mcp-catalog").content)
            print(f"catalog serves {served} entries, {body} bytes")
            samples = measure_http(client, args.n, args.block, args.warmup)

        for name in ("status", "catalog"):
            values = samples[name]
            print(
                f"{name}_p50_ms={percentile(values, 50):.3f} "
                f"{name}_p95_ms={percentile(values, 95):.3f} "
                f"{name}_max_ms={max(values):.3f} (n={len(values)})"
            )
        ratio = percentile(samples["catalog"], 50) / percentile(samples["status"], 50)
        print(f"catalog_p50_ratio={ratio:.2f} (goal <= 2.0)")
    finally:
        if proc is not None:
            stop_process(proc)

    try:
        uncached = measure_uncached_catalog(db_url, key_file, args.uncached)
        print(
            f"catalog_uncached_build_p50_ms={percentile(uncached, 50):.3f} "
            f"catalog_uncached_build_p95_ms={percentile(uncached, 95):.3f} "
            f"(in-process CatalogService.enabled() after a cache expiry, n={len(uncached)})"
        )
        t0 = time.perf_counter()
        auth = measure_tokens(tmp, args.tokens, args.samples)
        print(f"stored {args.tokens} tokens and timed auth in {time.perf_counter() - t0:.2f} s")
        first, steady = auth["first_use"], auth["steady"]
        print(
            f"token_auth_first_use_p50_ms={percentile(first, 50):.3f} "
            f"token_auth_first_use_p95_ms={percentile(first, 95):.3f} (writes last_used_at)"
        )
        print(f"token_auth_p50_ms={percentile(steady, 50):.3f} (database read, no cache)")
        print(f"token_auth_p95_ms={percentile(steady, 95):.3f}")
        cached = auth["cached"]
        print(
            f"token_auth_cached_p50_ms={percentile(cached, 50):.3f} "
            f"token_auth_cached_p95_ms={percentile(cached, 95):.3f} (TokenCache hit)"
        )
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
