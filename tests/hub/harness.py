"""A real JupyterHub on loopback for end-to-end tests: hub, proxy, single-user servers.

:class:`Hub` writes a ``jupyterhub_config.py`` into a run directory, starts
``python -m jupyterhub`` (with ``configurable-http-proxy`` from ``tests/hub/.node``, see
``install-proxy.sh``) and talks to it through the proxy, as a browser or an agent would:

* users ``admin`` (hub admin, group ``dodo-admins``), ``alice`` and ``bob``, signed in by
  :class:`~jupyterhub.auth.SharedPasswordAuthenticator` (:meth:`Hub.password`);
* :class:`~jupyterhub.spawner.SimpleLocalProcessSpawner`: each server runs this checkout
  (``PYTHONPATH``) with dodo enabled, ``HOME`` and dodo's database in
  ``<run>/home/<name>``, and ``--HubOAuth.cache_max_age=1``: after a share, revoke or
  rename, wait :data:`AUTH_CACHE_SECONDS` before asserting (0 would cache forever);
* sharing on (``shares!user`` for every user), the custom scope ``custom:dodo:admin``
  granted to ``dodo-admins``, and an admin API token (service ``test-admin``);
* the dodo hub catalog service (``Hub(catalog_db_url=...)``): the ``jupyterhub_config.py``
  block of ``docs/jupyterhub.md``, run as written there (:func:`docs_catalog_config`) with
  its port and database replaced; it then provides the custom scope, the ``dodo-admin``
  role and the servers' token scopes instead of the harness;
* or the same service as the Zero to JupyterHub values of ``docs/jupyterhub.md`` deploy
  it (``Hub(z2jh=True)``, :mod:`tests.hub.z2jh`), its database on the hub's "volume"
  ``<run>/volume``; the harness's ``extra_user_scopes`` then come as a list through
  ``hub.config``, as an operator's own values would set them;
* extra services (``Hub(services=[...])``): each one with a ``url`` is reachable by users
  and by server tokens (``access:services!service=<name>``); its ``environment`` gets
  ``PYTHONPATH`` to this checkout (services and servers inherit next to nothing from
  the hub's environment). Servers also get ``DODO_TEST_PROXY_URL``, the proxy's URL
  (``JUPYTERHUB_PUBLIC_URL`` is empty: ``c.JupyterHub.public_url`` is not set).

:meth:`Hub.stop` sends SIGTERM (the hub stops servers, services and proxy), then kills
whatever is left of this run (processes whose cwd is in the run directory or whose
environment has its :data:`RUN_MARKER`) and reports it.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "ADMIN_GROUP",
    "AUTH_CACHE_SECONDS",
    "CHP",
    "RUN_MARKER",
    "USERS",
    "Hub",
    "HubError",
    "docs_catalog_config",
    "free_ports",
]

REPO = Path(__file__).resolve().parents[2]

#: The document whose ``jupyterhub_config.py`` block the catalog-service hubs run.
JUPYTERHUB_DOC = REPO / "docs" / "jupyterhub.md"

#: configurable-http-proxy as installed by ``tests/hub/install-proxy.sh``.
CHP = Path(
    os.environ.get(
        "DODO_TEST_CHP", Path(__file__).parent / ".node/node_modules/.bin/configurable-http-proxy"
    )
)

#: The hub's users; ``admin`` is a hub admin and in :data:`ADMIN_GROUP`.
USERS = ("admin", "alice", "bob")
ADMIN_GROUP = "dodo-admins"

#: ``HubOAuth.cache_max_age`` of the single-user servers, and how long to sleep after a
#: change at the hub (share, revoke, rename) before a server sees it.
AUTH_CACHE_SECONDS = 1.1

#: Environment variable every process of one run carries (value: the run directory).
RUN_MARKER = "DODO_HUB_E2E_RUN"

_USER_PASSWORD = "user-password-for-tests"
_ADMIN_PASSWORD = "admin-password-for-tests-0123456789abcdef"
_ADMIN_API_TOKEN = "test-admin-api-token-0123456789abcdef"
_PROXY_AUTH_TOKEN = "test-proxy-auth-token-0123456789abcdef"

_START_TIMEOUT = 60.0
_SPAWN_TIMEOUT = 60.0
_STOP_TIMEOUT = 20.0


class HubError(AssertionError):
    """The hub did not do what a test needed; the message ends with the log's tail."""


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 right now."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


def docs_catalog_config(port: int, db_url: str) -> str:
    """The ``jupyterhub_config.py`` block of ``docs/jupyterhub.md`` (the first ```python
    block after its "run as-is by the end-to-end tests" comment), with ``dodo_port`` and
    ``dodo_db_url`` set to ``port`` and ``db_url``."""
    text = JUPYTERHUB_DOC.read_text()
    marker = text.index("run as-is by the end-to-end tests")
    start = text.index("```python\n", marker) + len("```python\n")
    block = text[start : text.index("```", start)]
    replaced = []
    for line in block.splitlines():
        if line.startswith("dodo_port = "):
            line = f"dodo_port = {port}"
        elif line.startswith("dodo_db_url = "):
            line = f"dodo_db_url = {db_url!r}"
        replaced.append(line)
    out = "\n".join(replaced) + "\n"
    if f"dodo_port = {port}" not in out or f"dodo_db_url = {db_url!r}" not in out:
        raise HubError(f"{JUPYTERHUB_DOC}: the block lost its dodo_port/dodo_db_url lines")
    return out


def _restore_signals() -> None:
    # A shell's `cmd &` starts pytest with SIGINT ignored, and children inherit ignored
    # signals: the hub's services would then ignore the hub's SIGINT and get SIGTERM only
    # ~30 s later, on every shutdown. Start the hub with default handlers and no mask.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


class Hub:
    """One JupyterHub run in ``run_dir``; use as a context manager or :meth:`start`/:meth:`stop`.

    Parameters
    ----------
    run_dir
        An empty directory for the config, databases, homes and ``hub.log``.
    services
        Extra ``c.JupyterHub.services`` entries (e.g. ``{"name": "dodo", "url": ...,
        "command": [sys.executable, "-m", "dodo_jupyter.hub"]}``).
    dodo_settings
        Extra ``DodoApp`` settings for every single-user server.
    extra_config
        Python appended to ``jupyterhub_config.py`` (``c`` is the config object).
    catalog_db_url
        Run the dodo hub catalog service on this database, configured by the block of
        ``docs/jupyterhub.md`` (see :func:`docs_catalog_config`); servers then use it.
    z2jh
        Run the dodo hub catalog service as the Zero to JupyterHub values of
        ``docs/jupyterhub.md`` deploy it (:mod:`tests.hub.z2jh`); servers then use it.
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        services: Iterable[Mapping[str, Any]] = (),
        dodo_settings: Mapping[str, Any] | None = None,
        extra_config: str = "",
        catalog_db_url: str | None = None,
        z2jh: bool = False,
    ) -> None:
        if z2jh and catalog_db_url is not None:
            raise ValueError("Hub: catalog_db_url (the jupyterhub_config.py block) or z2jh")
        self.run_dir = run_dir.resolve()
        self.catalog_db_url = catalog_db_url
        self.z2jh = z2jh
        self.services = [dict(s) for s in services]
        self.dodo_settings = dict(dodo_settings or {})
        self.extra_config = extra_config
        self.proxy_port, self.proxy_api_port, self.hub_port, self.catalog_port = free_ports(4)
        self.url = f"http://127.0.0.1:{self.proxy_port}"
        self.log_path = self.run_dir / "hub.log"
        self.admin_token = _ADMIN_API_TOKEN
        self.process: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=self.url, timeout=30)

    # -- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> Hub:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Write the config, start the hub and wait until its API answers through the proxy."""
        if not os.access(CHP, os.X_OK):
            raise HubError(
                f"configurable-http-proxy not found at {CHP}: run tests/hub/install-proxy.sh "
                "(or set DODO_TEST_CHP)"
            )
        config = self._write_config()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "DODO_"))}
        env.update(self._base_environment())
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(config)],
                cwd=self.run_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches pytest only; stop() ends the hub
                preexec_fn=_restore_signals,
            )
        finally:
            log.close()
        # Should pytest die without tearing down fixtures (e.g. a second Ctrl-C).
        atexit.register(self._stop_at_exit)
        try:
            self._wait("the hub API", _START_TIMEOUT, self._api_answers)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM the hub, wait, then kill any process of this run that is left.

        Raises :class:`HubError` when something had to be killed (after killing it).
        """
        leftovers: list[str] = []
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    leftovers.append(f"hub pid {self.process.pid} (no exit {_STOP_TIMEOUT} s)")
                    self.process.kill()
                    self.process.wait(timeout=10)
            leftovers += self._kill_leftovers()
        finally:
            self.process = None
            self.client.close()
            atexit.unregister(self._stop_at_exit)
        if leftovers:
            raise HubError(self._with_log(f"killed leftovers of this hub run: {leftovers}"))

    def _stop_at_exit(self) -> None:
        with contextlib.suppress(HubError):
            self.stop()

    def _kill_leftovers(self) -> list[str]:
        deadline = time.monotonic() + 5
        found: dict[int, str] = {}
        while pids := list(self._run_processes()):
            if time.monotonic() > deadline:
                break
            for pid, cmdline in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    found[pid] = cmdline
            time.sleep(0.1)
        return [f"{pid} {cmdline}" for pid, cmdline in found.items()]

    def _run_processes(self) -> Iterator[tuple[int, str]]:
        """Processes of this run: cwd in the run directory or :data:`RUN_MARKER` set."""
        marker = f"{RUN_MARKER}={self.run_dir}".encode()
        prefix = str(self.run_dir)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cwd = os.readlink(entry / "cwd")
                environ = (entry / "environ").read_bytes().split(b"\0")
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:  # gone, a zombie or a kernel thread
                continue
            if not cmdline:
                continue
            if cwd == prefix or cwd.startswith(prefix + "/") or marker in environ:
                yield int(entry.name), cmdline.strip()

    # -- config -----------------------------------------------------------------------

    def _base_environment(self) -> dict[str, str]:
        return {"PYTHONPATH": str(REPO), RUN_MARKER: str(self.run_dir)}

    def _write_config(self) -> Path:
        run = self.run_dir
        (run / "home").mkdir(parents=True, exist_ok=True)
        jupyter_config = run / "jupyter-config"
        jupyter_config.mkdir(exist_ok=True)
        (jupyter_config / "jupyter_server_config.json").write_text(
            json.dumps(
                {
                    "ServerApp": {"jpserver_extensions": {"dodo_jupyter": True}},
                    "DodoApp": {
                        "default_catalog": False,
                        "allow_insecure_loopback": True,
                        **self.dodo_settings,
                    },
                },
                indent=2,
            )
        )
        # Per-user paths need $HOME (set by the spawner), so they live in a .py config.
        if "db_url" not in self.dodo_settings or "key_file" not in self.dodo_settings:
            (jupyter_config / "jupyter_server_config.py").write_text(
                textwrap.dedent(
                    """\
                    import os

                    _home = os.environ["HOME"]
                    c.DodoApp.db_url = "sqlite:///" + os.path.join(_home, "dodo", "dodo.sqlite")
                    c.DodoApp.key_file = os.path.join(_home, "dodo", "crypt.key")
                    """
                )
            )
        services: list[dict[str, Any]] = [
            {"name": "test-admin", "api_token": self.admin_token},
        ]
        access_services: list[str] = []
        for spec in self.services:
            spec = dict(spec)
            spec["environment"] = {**self._base_environment(), **spec.get("environment", {})}
            services.append(spec)
            if spec.get("url"):
                access_services.append(f"access:services!service={spec['name']}")
        settings: dict[str, Any] = {
            "JupyterHub.bind_url": self.url,
            "JupyterHub.hub_bind_url": f"http://127.0.0.1:{self.hub_port}",
            "JupyterHub.db_url": f"sqlite:///{run / 'jupyterhub.sqlite'}",
            "JupyterHub.cookie_secret_file": str(run / "jupyterhub_cookie_secret"),
            "JupyterHub.pid_file": str(run / "jupyterhub.pid"),
            "JupyterHub.cleanup_servers": True,
            "JupyterHub.cleanup_proxy": True,
            # POST .../server answers 202 at once; spawn() polls for readiness.
            "JupyterHub.tornado_settings": {"slow_spawn_timeout": 0},
            "ConfigurableHTTPProxy.command": [str(CHP)],
            "ConfigurableHTTPProxy.api_url": f"http://127.0.0.1:{self.proxy_api_port}",
            "ConfigurableHTTPProxy.auth_token": _PROXY_AUTH_TOKEN,
            "ConfigurableHTTPProxy.pid_file": str(run / "proxy.pid"),
            "JupyterHub.authenticator_class": "shared-password",
            "SharedPasswordAuthenticator.user_password": _USER_PASSWORD,
            "SharedPasswordAuthenticator.admin_password": _ADMIN_PASSWORD,
            "Authenticator.admin_users": {"admin"},
            "Authenticator.allowed_users": set(USERS),
            "JupyterHub.spawner_class": "simple",
            "SimpleLocalProcessSpawner.home_dir_template": str(run / "home" / "{username}"),
            "Spawner.ip": "127.0.0.1",
            "Spawner.cmd": [sys.executable, "-m", "jupyterhub.singleuser"],
            "Spawner.args": ["--allow-root", "--HubOAuth.cache_max_age=1"],
            "Spawner.environment": {
                **self._base_environment(),
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "JUPYTER_CONFIG_DIR": str(jupyter_config),
                "DODO_TEST_PROXY_URL": self.url,
            },
            "Spawner.server_token_scopes": [
                "users:activity!user",
                "access:servers!server",
                *access_services,
                "custom:dodo:admin",
                "read:users!user",  # the owner's creation time, as docs/jupyterhub.md
            ],
            # A set: the docs' block adds to it with .add().
            "JupyterHub.extra_user_scopes": {
                "shares!user",
                "read:users:name",
                "read:groups:name",
                *access_services,
            },
            "JupyterHub.custom_scopes": {
                "custom:dodo:admin": {"description": "Administer dodo's approved MCP catalog."}
            },
            "JupyterHub.load_groups": {ADMIN_GROUP: {"users": ["admin"]}},
            "JupyterHub.load_roles": [
                {"name": "admin", "services": ["test-admin"]},
                {"name": "dodo-admin", "scopes": ["custom:dodo:admin"], "groups": [ADMIN_GROUP]},
            ],
            "JupyterHub.services": services,
        }
        docs_block = ""
        if self.catalog_db_url is not None or self.z2jh:
            # The docs' block sets these itself; the harness keeps only what it adds.
            del settings["JupyterHub.custom_scopes"]
            settings["JupyterHub.load_roles"] = settings["JupyterHub.load_roles"][:1]
        if self.catalog_db_url is not None:
            docs_block = docs_catalog_config(self.catalog_port, self.catalog_db_url)
        if self.z2jh:
            docs_block = self._z2jh_config(settings)
        if docs_block:
            # Services inherit next to nothing: give the catalog service this checkout.
            docs_block += (
                "\nfor _service in c.JupyterHub.services:\n"
                f"    _service['environment'] = {{**{self._base_environment()!r}, "
                "**_service.get('environment', {})}\n"
            )
        lines = ["# Written by tests/hub/harness.py", "c = get_config()  # noqa: F821", ""]
        lines += [f"c.{name} = {value!r}" for name, value in settings.items()]
        path = run / "jupyterhub_config.py"
        path.write_text("\n".join(lines) + "\n\n" + docs_block + "\n" + self.extra_config + "\n")
        return path

    def _z2jh_config(self, settings: dict[str, Any]) -> str:
        """The chart's configuration for the documented values, with the harness's
        ``extra_user_scopes`` (taken out of ``settings``) as a YAML list in ``hub.config``
        and its own token scopes left to the documented ``hub.extraConfig``."""
        from .z2jh import docs_values, jupyterhub_config, merge_values, on_this_machine

        volume = self.run_dir / "volume"
        volume.mkdir(exist_ok=True)
        documented = on_this_machine(
            docs_values(JUPYTERHUB_DOC), port=self.catalog_port, volume=volume
        )
        extra_user_scopes = sorted(settings.pop("JupyterHub.extra_user_scopes"))
        del settings["Spawner.server_token_scopes"]
        operator = {"hub": {"config": {"JupyterHub": {"extra_user_scopes": extra_user_scopes}}}}
        return jupyterhub_config(merge_values(documented, operator))

    # -- HTTP -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """``method path`` through the proxy (``path`` from ``/``), with ``token`` if given."""
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"token {token}"
        return self.client.request(method, path, json=json, headers=all_headers)

    def call(
        self, server: str, method: str, path: str, token: str, json: Any = None
    ) -> tuple[int, Any]:
        """``method path`` on ``server``'s server (by its proxy route, ``path`` below
        its base URL): the status and the JSON body, or the text when it is not JSON."""
        response = self.request(method, self.server_url(server) + path, token=token, json=json)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    def api(
        self, method: str, path: str, *, token: str | None = None, json: Any = None
    ) -> httpx.Response:
        """The hub REST API (``path`` below ``/hub/api``); the admin token by default."""
        return self.request(
            method, "/hub/api/" + path.lstrip("/"), token=token or self.admin_token, json=json
        )

    def _checked(self, response: httpx.Response, *expected: int) -> httpx.Response:
        if response.status_code not in expected:
            raise HubError(
                self._with_log(
                    f"{response.request.method} {response.request.url} -> "
                    f"{response.status_code} {response.text[:500]!r}, expected {expected}"
                )
            )
        return response

    # -- users, tokens, servers -------------------------------------------------------

    def password(self, name: str) -> str:
        """The password ``name`` signs in with at ``/hub/login``."""
        return _ADMIN_PASSWORD if name == "admin" else _USER_PASSWORD

    def user(self, name: str) -> dict[str, Any]:
        """The hub's user model (with server state), via the admin token."""
        result: dict[str, Any] = self._checked(self.api("GET", f"users/{name}"), 200).json()
        return result

    def user_token(self, name: str, **body: Any) -> str:
        """A new API token of ``name`` (1 h; ``body`` adds e.g. ``scopes``)."""
        response = self.api("POST", f"users/{name}/tokens", json={"expires_in": 3600, **body})
        return str(self._checked(response, 201).json()["token"])

    def spawn(self, *names: str) -> None:
        """Start the default servers of ``names`` (concurrently) and wait until all are ready."""
        for name in names:
            self._checked(self.api("POST", f"users/{name}/server"), 201, 202)
        for name in names:
            self._wait(f"{name}'s server", _SPAWN_TIMEOUT, partial(self._server_ready, name))

    def stop_server(self, *names: str) -> None:
        """Stop the default servers of ``names`` (concurrently) and wait until the hub
        says they are gone."""
        for name in names:
            self._checked(self.api("DELETE", f"users/{name}/server"), 202, 204)
        for name in names:
            self._wait(
                f"{name}'s server to stop",
                _SPAWN_TIMEOUT,
                partial(lambda name: "" not in self.user(name)["servers"], name),
            )

    def _server_ready(self, name: str) -> bool:
        server = self.user(name)["servers"].get("")
        if server is not None and not server["ready"] and not server["pending"]:
            raise HubError(self._with_log(f"{name}'s server failed to start: {server}"))
        return bool(server and server["ready"])

    def server_url(self, name: str) -> str:
        """The proxy URL of ``name``'s default server (it keeps it after a rename)."""
        return f"{self.url}/user/{name}/"

    def server_pid(self, name: str) -> int:
        """The process id of ``name``'s default server (from the hub's server state)."""
        return int(self.user(name)["servers"][""]["state"]["pid"])

    def service_pid(self, name: str) -> int:
        """The process id of the hub-managed service ``name`` of this run."""
        wanted = f"JUPYTERHUB_SERVICE_NAME={name}".encode()
        marker = f"{RUN_MARKER}={self.run_dir}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if wanted in environ and marker in environ:
                return int(entry.name)
        raise HubError(self._with_log(f"no process of the service {name!r}"))

    def server_token(self, name: str) -> str:
        """The API token the hub gave ``name``'s running server (``JUPYTERHUB_API_TOKEN``)."""
        environ = Path(f"/proc/{self.server_pid(name)}/environ").read_bytes()
        for item in environ.split(b"\0"):
            key, _, value = item.partition(b"=")
            if key == b"JUPYTERHUB_API_TOKEN":
                return value.decode()
        raise HubError(f"{name}'s server has no JUPYTERHUB_API_TOKEN")

    def share(self, owner: str, with_user: str) -> None:
        """Share ``owner``'s default server with ``with_user`` and wait out the auth cache."""
        token = self.user_token(owner)
        response = self.api("POST", f"shares/{owner}/", token=token, json={"user": with_user})
        self._checked(response, 200)
        time.sleep(AUTH_CACHE_SECONDS)

    def unshare(self, owner: str, with_user: str) -> None:
        """Revoke the share and wait out the auth cache."""
        token = self.user_token(owner)
        response = self.api("PATCH", f"shares/{owner}/", token=token, json={"user": with_user})
        self._checked(response, 200)
        time.sleep(AUTH_CACHE_SECONDS)

    def rename(self, old: str, new: str) -> None:
        """Rename a user (a running server keeps its URL) and wait out the auth cache."""
        self._checked(self.api("PATCH", f"users/{old}", json={"name": new}), 200)
        time.sleep(AUTH_CACHE_SECONDS)

    def delete_user(self, name: str) -> None:
        """Delete a user; the hub stops their server first."""
        self._checked(self.api("DELETE", f"users/{name}"), 204)

    # -- waiting and logs -------------------------------------------------------------

    def _api_answers(self) -> bool:
        try:
            return self.client.get("/hub/api", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def _wait(self, what: str, timeout: float, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if self.process is None or self.process.poll() is not None:
                raise HubError(self._with_log(f"the hub exited while waiting for {what}"))
            if time.monotonic() > deadline:
                raise HubError(self._with_log(f"waited {timeout} s for {what}"))
            time.sleep(0.1)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of ``hub.log`` (hub, proxy, services and servers all write there)."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def _with_log(self, message: str) -> str:
        return f"{message}\n--- {self.log_path} (tail) ---\n{self.log_tail()}"
