"""``kill -9`` of the Jupyter server at random points of the OAuth flow and of refresh-token
rotation, cycle after cycle: after each restart every connection dodo acknowledged is
there, none is there twice, and refresh works.

Two demo servers play the upstreams, both with one-second access tokens (less than
dodo's refresh leeway, so every use of a connection rotates its refresh token) and an
Okta-style reuse grace (a rotated-out refresh token works for a while, so a client that
died before saving a rotation's answer can still refresh):

* ``kept`` is connected once and must stay connected through every cycle;
* ``flow`` is disconnected and connected again in each flow cycle.

Each cycle arms one kill point, does the work that reaches it, and the server dies there:

* in the authorization server's token endpoint, while it handles dodo's request: before
  it answers (nothing issued) or after it issued tokens whose answer dodo never reads,
  for an authorization code and for a refresh (the test wraps the demo provider);
* at a random delay after the test sent ``start-auth``, the OAuth callback or a tool
  call: anywhere in dodo's handling, before or after its commit;
* between ``start-auth`` and the callback (the flow is pending), and idle.

The order of the points and the delays come from a seeded RNG; the seed is in every
failure message (``DODO_RESTART_SEED`` replays it). Strict rotation without a grace is
its own test: there a kill after the rotation costs a new sign-in, which dodo asks for
clearly and without a second connection.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.server.auth.provider import TokenError

from dodo_jupyter.demo.server import DemoConfig
from dodo_jupyter.demo.testing import DemoHandle, running_demo_server

from .jupyter_process import ServerProcess
from .oauth_peers import callback_query, consent

#: The catalog ids: ``flow`` is the harness's "demo" entry, ``kept`` an extra one.
FLOW, KEPT = "demo", "kept"
#: Flow cycles connect ``flow``; refresh cycles use ``kept``.
FLOW_POINTS = ("start-auth:timed", "pending", "code:before", "code:after", "callback:timed")
REFRESH_POINTS = ("refresh:before", "refresh:after", "call:timed", "idle")
#: Upper bounds of the random delays, in seconds: about the slowest such request here.
TIMED = {"start-auth:timed": 0.25, "callback:timed": 0.3, "call:timed": 0.15}

START, CALLBACK = "/dodo/api/mcp/start-auth", "/dodo/oauth/callback"
GRACE = DemoConfig(port=0, access_token_ttl=1, refresh_reuse_grace=600)


def _dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


class Killer:
    """Sends SIGKILL to the Jupyter server when the armed point is reached."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.point: str | None = None
        self.fired = threading.Event()
        self._lock = threading.Lock()

    def arm(self, point: str) -> None:
        self.fired.clear()
        self.point = point

    def reached(self, point: str) -> bool:
        """Kill now if ``point`` is the armed one (called from the demo servers' thread)."""
        with self._lock:
            if self.point != point:
                return False
            self.point = None
        self.kill_now()
        return True

    def kill_now(self) -> None:
        process = self.server.process
        assert process is not None
        os.kill(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while not _dead(process.pid) and time.monotonic() < deadline:
            time.sleep(0.001)
        self.fired.set()

    def later(self, delay: float) -> threading.Timer:
        self.point = None
        timer = threading.Timer(delay, self.kill_now)
        timer.start()
        return timer


def wrap_token_endpoint(
    demo: DemoHandle, killer: Killer, kinds: tuple[str, ...] = ("code", "refresh")
) -> None:
    """Give the demo AS kill points around issuing tokens for a code and for a refresh
    (``kinds`` says which of the two this server has)."""
    provider = demo.provider

    def wrap(method: str, kind: str) -> None:
        original: Callable[..., Awaitable[Any]] = getattr(provider, method)

        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            if killer.reached(f"{kind}:before"):
                # dodo died before the AS handled its request: nothing is issued.
                raise TokenError("invalid_request", "the client is gone")
            result = await original(*args, **kwargs)
            killer.reached(f"{kind}:after")  # issued; the answer goes to a dead socket
            return result

        setattr(provider, method, wrapped)

    methods = {"code": "exchange_authorization_code", "refresh": "exchange_refresh_token"}
    for kind in kinds:
        wrap(methods[kind], kind)


@dataclass
class Run:
    """What a cycle run did and what dodo acknowledged, for the checks after a restart."""

    seed: int
    cycle: int = 0
    point: str = ""
    fired: Counter[str] = field(default_factory=Counter)
    grace_uses: int = 0

    def where(self) -> str:
        return f"(seed {self.seed}, cycle {self.cycle}, kill point {self.point!r})"


class Cycles:
    """The Jupyter server, the two demo servers and the steps of one cycle."""

    def __init__(self, server: ServerProcess, flow: DemoHandle, kept: DemoHandle, run: Run):
        self.server = server
        self.flow = flow
        self.kept = kept
        self.run = run
        self.killer = Killer(server)
        # Code points die in flow's sign-in, refresh points in kept's rotation; flow's own
        # refreshes (dodo lists its tools after each sign-in) never reach a kill point.
        wrap_token_endpoint(flow, self.killer, ("code",))
        wrap_token_endpoint(kept, self.killer, ("refresh",))

    # -- requests ---------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """The response, or None when the server died before answering."""
        try:
            return self.server.client.request(method, path, **kwargs)
        except httpx.TransportError:
            return None

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        response = self.server.client.request(method, path, json=body)
        assert response.status_code < 400, f"{self.run.where()} {path}: {response.text}"
        return response.json()

    def servers(self) -> dict[str, dict[str, Any]]:
        listed = self.ok("GET", "/dodo/api/mcp/servers")["servers"]
        urls = Counter(s["url"] for s in listed)
        assert all(n == 1 for n in urls.values()), f"{self.run.where()} duplicated: {urls}"
        return {s["catalog_id"]: s for s in listed}

    def call_echo(self, catalog_id: str) -> httpx.Response | None:
        body = {"name": f"{catalog_id}__echo", "arguments": {"text": f"cycle {self.run.cycle}"}}
        return self.request("POST", "/dodo/api/mcp/tools/call", json=body)

    def assert_echo_works(self, catalog_id: str) -> None:
        response = self.call_echo(catalog_id)
        assert response is not None and response.status_code == 200, self.run.where()
        result = response.json()
        assert not result.get("isError"), f"{self.run.where()} {catalog_id}: {result}"
        assert result["content"][0]["text"] == f"cycle {self.run.cycle}", self.run.where()

    def connect(self, catalog_id: str, started: dict[str, Any] | None = None) -> None:
        """Finish (or start and finish) signing in, as a person clicking Connect does."""
        if started is None:
            started = self.ok("POST", START, {"catalog_id": catalog_id})
        if started["state"] == "authenticating":
            query = callback_query(asyncio.run(consent(started["authorize_url"])))
            page = self.server.client.get(CALLBACK, params=query)
            assert page.status_code == 200 and "Connected" in page.text, (
                f"{self.run.where()} {page.text[:300]}"
            )
        assert self.servers()[catalog_id]["state"] == "connected", self.run.where()

    def grace_uses(self) -> int:
        """kept's refreshes with a rotated-out token. flow's are not counted: a kill can
        land while dodo refreshes flow in the background after a sign-in, and that
        rotation is lost as legitimately as kept's."""
        return int(self.kept.stats.snapshot()["refresh_reuse_in_grace"])

    # -- a cycle ----------------------------------------------------------------------

    def killed_during(
        self, point: str, rng: random.Random, send: Callable[[], httpx.Response | None]
    ) -> bool:
        """``send`` with the kill armed at ``point`` (a hook in the authorization server,
        or a random delay for a timed point); True when dodo answered before it died."""
        timer = self.killer.later(rng.uniform(0, TIMED[point])) if point in TIMED else None
        if timer is None:
            self.killer.arm(point)
        response = send()
        if timer is not None:
            timer.join()
        assert self.killer.fired.wait(10), f"{self.run.where()} the point was not reached"
        return response is not None and response.status_code == 200

    def cycle(self, point: str, rng: random.Random) -> None:
        self.run.point = point
        if point in FLOW_POINTS:
            self.flow_cycle(point, rng)
        else:
            self.refresh_cycle(point, rng)
        self.run.fired[point] += 1

    def flow_cycle(self, point: str, rng: random.Random) -> None:
        """Disconnect ``flow`` and connect it again, dying at ``point``; after the
        restart, finish connecting the way a person would."""
        connected = self.servers().get(FLOW)
        if connected is not None:
            self.ok("POST", "/dodo/api/mcp/delete-auth", {"connection_id": connected["id"]})
        acknowledged = False
        pending: dict[str, str] | None = None
        if point == "start-auth:timed":
            start = partial(self.request, "POST", START, json={"catalog_id": FLOW})
            self.killed_during(point, rng, start)
        else:
            started = self.ok("POST", START, {"catalog_id": FLOW})
            assert started["state"] == "authenticating", self.run.where()
            query = callback_query(asyncio.run(consent(started["authorize_url"])))
            if point == "pending":
                self.killer.kill_now()
                pending = query
            else:
                callback = partial(self.request, "GET", CALLBACK, params=query)
                acknowledged = self.killed_during(point, rng, callback)
        self._restart_and_check()
        state = self.servers().get(FLOW, {}).get("state")
        if acknowledged:
            assert state == "connected", f"{self.run.where()} an acknowledged sign-in was lost"
        if pending is not None:
            # The flow was pending: the callback the browser was about to send still works.
            page = self.server.client.get(CALLBACK, params=pending)
            assert page.status_code == 200 and "Connected" in page.text, self.run.where()
        elif state != "connected":
            self.connect(FLOW)
        self.assert_echo_works(FLOW)

    def refresh_cycle(self, point: str, rng: random.Random) -> None:
        """Use ``kept`` (each use rotates its refresh token), dying at ``point``; after
        the restart it must still be connected and work without a new sign-in."""
        grace_before = self.grace_uses()
        if point == "idle":
            self.assert_echo_works(KEPT)
            self.killer.kill_now()
            acknowledged = True
        else:
            acknowledged = self.killed_during(point, rng, partial(self.call_echo, KEPT))
        self._restart_and_check()
        self.assert_echo_works(KEPT)
        used_grace = self.grace_uses() - grace_before
        if acknowledged:
            # dodo answered, so it had saved the rotation: no old token was needed.
            assert used_grace == 0, f"{self.run.where()} an acknowledged rotation was lost"
        if point == "refresh:after":
            assert used_grace == 1, f"{self.run.where()} expected a refresh in the grace"
        self.run.grace_uses += used_grace

    def _restart_and_check(self) -> None:
        self.server.kill()
        self.server.start()
        listed = self.servers()
        kept = listed.get(KEPT)
        assert kept is not None and kept["state"] == "connected", (
            f"{self.run.where()} the kept connection was lost: {kept}"
        )


@pytest.fixture
def demos() -> Iterator[tuple[DemoHandle, DemoHandle]]:
    with running_demo_server(GRACE) as flow, running_demo_server(GRACE) as kept:
        yield flow, kept


@pytest.mark.parametrize(
    ("database", "cycles"),
    [("sqlite", 100), pytest.param("postgres", 30, marks=pytest.mark.postgres)],
)
def test_kill_9_cycles(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    demos: tuple[DemoHandle, DemoHandle],
    database: str,
    cycles: int,
) -> None:
    flow, kept = demos
    db_url = request.getfixturevalue(f"{database}_url")
    server = ServerProcess(
        tmp_path, flow, db_url=db_url, more_catalog=[{"id": KEPT, "url": kept.url}]
    )
    run = Run(seed=int(os.environ.get("DODO_RESTART_SEED") or random.randrange(2**32)))
    rng = random.Random(run.seed)
    points = [*FLOW_POINTS, *REFRESH_POINTS]
    order = (points * (cycles // len(points) + 1))[:cycles]
    rng.shuffle(order)
    try:
        server.start()
        steps = Cycles(server, flow, kept, run)
        steps.connect(KEPT)
        steps.connect(FLOW)
        for run.cycle, point in enumerate(order, 1):
            steps.cycle(point, rng)
    finally:
        if server.process is not None:
            server.kill()
        server.client.close()
    assert set(run.fired) == set(points), run.fired
    kept_stats = kept.stats.snapshot()
    assert kept_stats["token_exchanges"] == 1, "kept needed a new sign-in"
    assert kept_stats["refresh_reuse_detected"] == 0, "an old refresh token was used past its grace"
    assert kept_stats["refreshes"] >= run.fired["refresh:after"] + run.fired["idle"]
    assert run.grace_uses >= run.fired["refresh:after"]


def test_strict_rotation_kill_after_rotation_asks_for_one_new_sign_in(tmp_path: Path) -> None:
    """Without a grace, an answer lost to a kill cannot be recovered: dodo says to connect
    again, and connecting again reuses the same connection."""
    strict = DemoConfig(port=0, access_token_ttl=1, refresh_reuse_revokes_grant=True)
    with running_demo_server(strict) as demo:
        server = ServerProcess(tmp_path, demo)
        killer = Killer(server)
        wrap_token_endpoint(demo, killer)
        body = {"name": f"{FLOW}__echo", "arguments": {"text": "hi"}}
        try:
            server.start()
            started = server.call("POST", START, {"catalog_id": FLOW})
            query = callback_query(asyncio.run(consent(started["authorize_url"])))
            assert server.client.get(CALLBACK, params=query).status_code == 200
            killer.arm("refresh:after")
            with pytest.raises(httpx.TransportError):
                server.client.post("/dodo/api/mcp/tools/call", json=body)
            # The socket closes as the process dies, a moment before the killer sees it.
            assert killer.fired.wait(10)
            server.kill()
            server.start()
            result = server.call("POST", "/dodo/api/mcp/tools/call", body)
            assert result["isError"] and "connect again" in result["content"][0]["text"]
            (conn,) = server.call("GET", "/dodo/api/mcp/servers")["servers"]
            assert conn["state"] == "needs_auth" and "connect again" in conn["error"]
            again = server.call("POST", START, {"catalog_id": FLOW})
            assert again["state"] == "authenticating"
            query = callback_query(asyncio.run(consent(again["authorize_url"])))
            assert server.client.get(CALLBACK, params=query).status_code == 200
            (after,) = server.call("GET", "/dodo/api/mcp/servers")["servers"]
            assert (after["id"], after["state"]) == (conn["id"], "connected")
            assert not server.call("POST", "/dodo/api/mcp/tools/call", body).get("isError")
        finally:
            if server.process is not None:
                server.kill()
            server.client.close()
        stats = demo.stats.snapshot()
        assert stats["refresh_reuse_detected"] == 1 and stats["token_exchanges"] == 2
