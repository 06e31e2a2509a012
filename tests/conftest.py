"""Shared fixtures: databases (SQLite and the PostgreSQL at 127.0.0.1:5432), a real
Jupyter server with dodo (pytest-jupyter), and a JSON client for the REST API."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import create_engine, text
from tornado.httpclient import HTTPClientError

from dodo_jupyter.identity import LocalIdentityResolver
from dodo_jupyter.runtime import DodoRuntime
from dodo_jupyter.runtime_settings import RuntimeSettings

from .scripted_server import serve  # noqa: F401 - the fixture of tests that script a server

pytest_plugins = ["pytest_jupyter.jupyter_server"]

#: The PostgreSQL every machine of this project runs (trust auth, database "test").
POSTGRES_URL = os.environ.get(
    "DODO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'dodo.sqlite'}"


@contextlib.contextmanager
def postgres_schema(prefix: str = "dodo_test") -> Iterator[str]:
    """The URL of a fresh schema in the test database, dropped on exit."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards."""
    with postgres_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each store test runs on SQLite and on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "crypt.key"


@pytest.fixture
def make_runtime(db_url: str, key_file: Path) -> Iterator[Callable[..., DodoRuntime]]:
    """Build opened runtimes on the test database (without a Jupyter server)."""
    made: list[DodoRuntime] = []

    def make(**overrides: Any) -> DodoRuntime:
        settings = RuntimeSettings(
            db_url=db_url,
            key_file=key_file,
            default_catalog=False,
            environ={},
            catalog_cache_ttl=0.0,
        )
        for name, value in overrides.items():
            setattr(settings, name, value)
        runtime = DodoRuntime(settings, LocalIdentityResolver("owner"))
        runtime.open_sync()
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.store.close()


@pytest_asyncio.fixture
async def runtime(make_runtime: Callable[..., DodoRuntime]) -> AsyncIterator[DodoRuntime]:
    yield make_runtime()


# -- a real Jupyter server with dodo ------------------------------------------------------


@pytest.fixture
def dodo_config(tmp_path: Path) -> dict[str, Any]:
    """DodoApp settings for the test server; tests may change them before the server starts."""
    return {
        "db_url": f"sqlite:///{tmp_path / 'server' / 'dodo.sqlite'}",
        "key_file": str(tmp_path / "server" / "crypt.key"),
        "default_catalog": False,
        "allow_insecure_loopback": True,
        "catalog_cache_ttl": 0.0,
    }


@pytest.fixture
def jp_server_config(dodo_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"dodo_jupyter": True}},
        "DodoApp": dodo_config,
    }


class Api:
    """Calls the REST API and returns (status, parsed JSON) without raising on 4xx/5xx."""

    def __init__(self, jp_fetch: Callable[..., Any]) -> None:
        self._fetch = jp_fetch

    async def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"method": method, "headers": headers or {}}
        if params:
            kwargs["params"] = params
        if raw is not None:
            kwargs["body"] = raw
        elif body is not None:
            kwargs["body"] = json.dumps(body)
        elif method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = b""
            kwargs["allow_nonstandard_methods"] = True
        parts = [p for p in path.split("/") if p]
        try:
            response = await self._fetch(*parts, **kwargs)
        except HTTPClientError as e:
            response = e.response
            assert response is not None, e
        text_body = response.body.decode() if response.body else ""
        return response.code, json.loads(text_body) if text_body else None


@pytest.fixture
def api(jp_fetch: Callable[..., Any], jp_serverapp: Any) -> Api:
    return Api(jp_fetch)


@pytest.fixture
def runtime_(jp_serverapp: Any) -> DodoRuntime:
    """The running test server's dodo runtime."""
    runtime: DodoRuntime = jp_serverapp.web_app.settings["dodo"]
    return runtime


@pytest.fixture
def gateway_url(http_server_client: Any, jp_http_port: int, jp_base_url: str) -> str:
    """The running test server's gateway endpoint."""
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}dodo/mcp"


@pytest.fixture
def upstreams_closed_first(jp_serverapp: Any, jp_asyncio_loop: Any) -> Iterator[None]:
    """Close dodo's upstream MCP sessions before the test's servers stop.

    pytest-jupyter stops the Jupyter server last (its cleanup fixture is set up first);
    without this, upstream servers would wait for dodo's open streams while shutting down.
    Use it from modules whose servers are fixtures: ``pytestmark =
    pytest.mark.usefixtures("upstreams_closed_first")``.
    """
    yield
    runtime = jp_serverapp.web_app.settings["dodo"]
    if hasattr(runtime, "gateway"):
        jp_asyncio_loop.run_until_complete(runtime.gateway.pool.close())


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Hub mode for the server under test: ``JUPYTERHUB_USER=alice``; call the yielded
    function with ``name=hub_user(...)`` models to register who may call."""
    from .hub_identity import HUB_API_URL, HUB_USERS

    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    monkeypatch.setenv("JUPYTERHUB_API_URL", HUB_API_URL)
    yield HUB_USERS.update
    HUB_USERS.clear()
