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

The configuration itself (users, secrets, ``jupyterhub_config.py``) is written by
:mod:`.hub_config`.

:meth:`Hub.stop` sends SIGTERM (the hub stops servers, services and proxy), then kills
whatever is left of this run (processes whose cwd is in the run directory or whose
environment has its :data:`RUN_MARKER`) and reports it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from .hub_config import (
    ADMIN_API_TOKEN,
    ADMIN_GROUP,
    ADMIN_PASSWORD,
    CHP,
    JUPYTERHUB_DOC,
    RUN_MARKER,
    USER_PASSWORD,
    USERS,
    HubError,
    base_environment,
    docs_catalog_config,
    write_config,
)

__all__ = [
    "ADMIN_GROUP",
    "AUTH_CACHE_SECONDS",
    "CHP",
    "JUPYTERHUB_DOC",
    "RUN_MARKER",
    "USERS",
    "Hub",
    "HubError",
    "docs_catalog_config",
    "free_ports",
]

#: ``HubOAuth.cache_max_age`` of the single-user servers, and how long to sleep after a
#: change at the hub (share, revoke, rename) before a server sees it.
AUTH_CACHE_SECONDS = 1.1

_START_TIMEOUT = 60.0
_SPAWN_TIMEOUT = 60.0
_STOP_TIMEOUT = 20.0


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 right now."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


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
        self.admin_token = ADMIN_API_TOKEN
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
        config = write_config(self)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "DODO_"))}
        env.update(base_environment(self.run_dir))
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
        return ADMIN_PASSWORD if name == "admin" else USER_PASSWORD

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
