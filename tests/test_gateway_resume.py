"""Resumable streams at the gateway (SEP-1699): the bounded event store's limits, and a
client that loses its stream in the middle of a tool call and resumes it with
``Last-Event-ID`` through a real Jupyter server with dodo and a real upstream MCP server
on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http import EventMessage

from dodo_jupyter.gateway.event_store import EVENT_OVERHEAD, HANDOFF_SECONDS, BoundedEventStore
from dodo_jupyter.gateway.resume_limits import ResumeLimits
from dodo_jupyter.runtime import DodoRuntime

from .conftest import Api
from .mcp_peers import INITIALIZE, RunningServer, running_mcp_server

# -- the store ----------------------------------------------------------------------------


class Clock:
    """Monotonic seconds that a test moves on by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def progress(value: int, text: str = "") -> types.JSONRPCNotification:
    params = {"progressToken": "p", "progress": value, "message": text}
    return types.JSONRPCNotification(jsonrpc="2.0", method="notifications/progress", params=params)


def result(request_id: int, text: str) -> types.JSONRPCResponse:
    content = [{"type": "text", "text": text}]
    return types.JSONRPCResponse(jsonrpc="2.0", id=request_id, result={"content": content})


def store(clock: Clock | None = None, **limits: Any) -> BoundedEventStore:
    values = {"events_per_session": 1000, "bytes_per_session": 1 << 20, "max_bytes": 1 << 22}
    values["max_age"] = 300.0
    return BoundedEventStore(**{**values, **limits}, clock=clock or Clock())


async def replay(events: BoundedEventStore, session: str, last_id: str) -> tuple[Any, list[Any]]:
    """What a resuming client of ``session`` gets: the stream id and (id, message) pairs."""
    sent: list[tuple[str | None, Any]] = []

    async def send(event: EventMessage) -> None:
        sent.append((event.event_id, event.message.model_dump(by_alias=True, exclude_unset=True)))

    return await events.for_session(session).replay_events_after(last_id, send), sent


def wire(message: Any) -> Any:
    return message.model_dump(by_alias=True, exclude_unset=True)


async def test_a_replay_sends_what_followed_on_that_stream_only() -> None:
    events = store()
    session = events.for_session("s1")
    await session.store_event("7", None)  # the priming event
    first = await session.store_event("7", progress(1))
    await session.store_event("8", progress(50, "another call"))
    second = await session.store_event("7", progress(2))
    again = await session.store_event("7", None)  # a resumed stream's priming event
    done = await session.store_event("7", result(7, "done"))
    stream, sent = await replay(events, "s1", first)
    assert stream == "7"
    assert sent == [(second, wire(progress(2))), (done, wire(result(7, "done")))]
    assert len({first, second, again, done}) == 4 and all(i.isdigit() for i in (first, done))
    assert await replay(events, "s1", done) == ("7", [])  # caught up: the live stream follows


async def test_sessions_never_see_each_others_events() -> None:
    events = store()
    mine, theirs = events.for_session("mine"), events.for_session("theirs")
    my_cursor = await mine.store_event("1", progress(1, "mine"))
    their_cursor = await theirs.store_event("1", progress(1, "theirs"))
    await mine.store_event("1", result(1, "my secret"))
    await theirs.store_event("1", result(1, "their secret"))
    assert await replay(events, "theirs", my_cursor) == (None, [])
    assert await replay(events, "mine", their_cursor) == (None, [])
    stream, sent = await replay(events, "theirs", their_cursor)
    assert [m["result"]["content"][0]["text"] for _, m in sent] == ["their secret"]


@pytest.mark.parametrize("last_id", ["", "abc", "-1", "1.0", " 1", "999999", "1" * 40])
async def test_an_id_that_names_no_kept_event_replays_nothing(last_id: str) -> None:
    events = store()
    await events.for_session("s").store_event("1", progress(1))
    assert await replay(events, "s", last_id) == (None, [])


async def test_a_session_keeps_its_newest_events_up_to_its_count() -> None:
    events = store(events_per_session=3)
    ids = [await events.for_session("s").store_event("1", progress(n)) for n in range(5)]
    other = await events.for_session("t").store_event("1", progress(0))
    assert events.events_kept == 4 and events.sessions_kept == 2
    assert await replay(events, "s", ids[1]) == (None, [])  # dropped: nothing, never a gap
    stream, sent = await replay(events, "s", ids[2])
    assert [message["params"]["progress"] for _, message in sent] == [3, 4]
    assert (await replay(events, "t", other))[0] == "1"


async def test_a_session_keeps_its_newest_events_up_to_its_bytes() -> None:
    size = EVENT_OVERHEAD + 1 + len(json.dumps(wire(progress(0, "x" * 100)), separators=(",", ":")))
    events = store(bytes_per_session=3 * size)
    ids = [await events.for_session("s").store_event("1", progress(n, "x" * 100)) for n in range(5)]
    assert events.events_kept == 3 and events.bytes_kept == 3 * size
    assert await replay(events, "s", ids[1]) == (None, [])
    assert [m["params"]["progress"] for _, m in (await replay(events, "s", ids[2]))[1]] == [3, 4]


async def test_the_total_drops_the_oldest_events_of_any_session() -> None:
    one = EVENT_OVERHEAD + 1 + len(progress(0).model_dump_json(by_alias=True, exclude_unset=True))
    events = store(max_bytes=4 * one)
    early = await events.for_session("a").store_event("1", progress(0))
    kept = await events.for_session("a").store_event("1", progress(1))
    for n in range(3):
        await events.for_session("b").store_event("1", progress(n))
    assert events.bytes_kept == 4 * one and events.events_kept == 4
    assert await replay(events, "a", early) == (None, [])
    assert (await replay(events, "a", kept))[0] == "1"


async def test_memory_stays_within_the_total_whatever_clients_send() -> None:
    events = store(events_per_session=50, bytes_per_session=64 * 1024, max_bytes=256 * 1024)
    rng = random.Random(7)
    for n in range(4000):
        session = f"s{rng.randrange(300)}"
        message = None if rng.random() < 0.1 else progress(n, "x" * rng.randrange(20_000))
        await events.for_session(session).store_event(str(rng.randrange(5)), message)
        assert events.bytes_kept <= 256 * 1024
    assert events.sessions_kept <= 256 * 1024 // EVENT_OVERHEAD
    for session in [f"s{n}" for n in range(300)]:
        events.forget(session)
    assert (events.events_kept, events.bytes_kept, events.sessions_kept) == (0, 0, 0)


async def test_events_older_than_the_age_limit_are_dropped() -> None:
    clock = Clock()
    events = store(clock, max_age=300.0)
    old = await events.for_session("s").store_event("1", progress(1))
    clock.now += 200
    recent = await events.for_session("s").store_event("1", progress(2))
    clock.now += 101
    assert await replay(events, "s", old) == (None, [])
    assert await replay(events, "s", recent) == ("1", [])
    clock.now += 200
    await events.for_session("t").store_event("1", None)
    assert events.events_kept == 1 and await replay(events, "s", recent) == (None, [])


async def test_events_come_of_age_without_any_further_traffic() -> None:
    events = BoundedEventStore(
        events_per_session=10, bytes_per_session=1 << 20, max_bytes=1 << 20, max_age=0.05
    )
    await events.for_session("s").store_event("1", result(1, "a sensitive result"))
    await asyncio.sleep(0.05)
    await events.for_session("s").store_event("1", progress(2))
    for _ in range(100):
        if events.events_kept == 0:
            break
        await asyncio.sleep(0.01)
    assert (events.events_kept, events.bytes_kept, events.sessions_kept) == (0, 0, 0)


async def test_an_event_too_large_to_keep_leaves_no_replay_that_would_skip_it() -> None:
    events = store(bytes_per_session=2000)
    session = events.for_session("s")
    before = await session.store_event("1", progress(1))
    large = await session.store_event("1", result(1, "x" * 5000))
    after = await session.store_event("2", progress(2))
    assert await replay(events, "s", before) == (None, [])
    assert await replay(events, "s", large) == (None, [])
    assert await replay(events, "s", after) == ("2", [])


async def test_events_stored_while_a_replay_runs_are_sent_too() -> None:
    events = store()
    session = events.for_session("s")
    cursor = await session.store_event("1", progress(1))
    await session.store_event("1", progress(2))
    sent: list[Any] = []

    async def send(event: EventMessage) -> None:
        sent.append(wire(event.message))
        if len(sent) == 1:  # the call goes on while the client reads
            await session.store_event("1", result(1, "done"))

    assert await session.replay_events_after(cursor, send) == "1"
    assert sent == [wire(progress(2)), wire(result(1, "done"))]


async def a_few_turns() -> None:
    """Let every ready task of the loop run a few times (no time passes)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_message_coming_while_a_replayed_stream_turns_live_waits_for_it() -> None:
    """After a replay the SDK sends the resumed stream's priming event and only then takes
    the stream over (``live``): a message of that stream routed in between would be kept
    but sent to no one, so storing it waits until the stream is live."""
    events = store()
    live: set[object] = set()
    session = events.for_session("s", live=live)
    cursor = await session.store_event("1", progress(1))
    assert await session.replay_events_after(cursor, _ignore_event) == "1"

    waiting = asyncio.ensure_future(session.store_event("1", progress(2)))
    await a_few_turns()
    assert not waiting.done()
    # The SDK's own priming event, and the messages of other streams, do not wait.
    priming = asyncio.ensure_future(session.store_event("1", None))
    other = asyncio.ensure_future(session.store_event("2", progress(9)))
    await a_few_turns()
    assert priming.done() and other.done() and not waiting.done()

    live.add("1")  # the SDK took the stream over
    stored = await asyncio.wait_for(waiting, 5)
    assert int(stored) < int(other.result())  # kept in the order it came
    after = asyncio.ensure_future(session.store_event("1", progress(3)))
    await a_few_turns()
    assert after.done()


async def test_a_replayed_stream_that_never_turns_live_holds_a_message_only_briefly() -> None:
    """A resumed client that went away again before the SDK took the stream over holds the
    session's next message of that stream for at most HANDOFF_SECONDS, once."""
    events = store()
    session = events.for_session("s", live=set())
    cursor = await session.store_event("1", progress(1))
    assert await session.replay_events_after(cursor, _ignore_event) == "1"
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(session.store_event("1", progress(2)), HANDOFF_SECONDS + 5)
    assert asyncio.get_running_loop().time() - started >= HANDOFF_SECONDS
    later = asyncio.ensure_future(session.store_event("1", progress(3)))
    await a_few_turns()
    assert later.done()


async def _ignore_event(event: EventMessage) -> None:
    return None


async def test_a_replay_stops_when_the_events_after_it_are_dropped() -> None:
    events = store(events_per_session=3)
    session = events.for_session("s")
    cursor = await session.store_event("1", progress(1))
    await session.store_event("1", progress(2))
    await session.store_event("1", progress(3))
    sent: list[Any] = []

    async def send(event: EventMessage) -> None:
        sent.append(wire(event.message))
        for n in range(4, 8):  # a fast stream pushes out what the client has not read yet
            await session.store_event("1", progress(n))

    assert await session.replay_events_after(cursor, send) is None
    assert sent == [wire(progress(2))]


def test_limits_out_of_range_name_their_setting() -> None:
    with pytest.raises(ValueError, match=r"DodoApp\.resume_max_bytes .* not 0"):
        store(max_bytes=0)
    assert not ResumeLimits(events_per_session=0).enabled
    assert not ResumeLimits(max_age=0).enabled and ResumeLimits().enabled


# -- through a Jupyter server with dodo ---------------------------------------------------

RETRY_MS = 250
SSE_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-11-25",
}


class Gate:
    """Holds the upstream tool after its first step until the test opens it."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.finished = threading.Event()


def stepwise_server(gate: Gate) -> MCPServer:
    mcp = MCPServer("stepwise")

    @mcp.tool()
    async def stepwise(steps: int, ctx: Context) -> str:
        """Report step 1, wait for the gate, report the other steps."""
        await ctx.report_progress(1, steps, "step 1")
        for _ in range(2000):  # at most 20 s
            if gate.opened.is_set():
                break
            await asyncio.sleep(0.01)
        for step in range(2, steps + 1):
            await ctx.report_progress(step, steps, f"step {step}")
        gate.finished.set()
        return f"all {steps} steps done"

    return mcp


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def peer(gate: Gate) -> Iterator[RunningServer]:
    app = stepwise_server(gate).streamable_http_app(host="127.0.0.1")
    with running_mcp_server(app=app) as server:
        yield server


@pytest.fixture
def dodo_config(dodo_config: dict[str, Any], peer: RunningServer) -> dict[str, Any]:
    return {
        **dodo_config,
        "catalog": [{"id": "peer", "url": peer.url, "auth_type": "none"}],
        "resume_retry_interval": RETRY_MS / 1000,
    }


class Sse:
    """Reads one response's server-sent events (``id``, ``data``, ``retry``)."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines: AsyncIterator[str] = response.aiter_lines()

    async def next(self) -> dict[str, str] | None:
        """The next event, or None when the stream ended (within 15 s)."""
        return await asyncio.wait_for(self._next(), 15)

    async def _next(self) -> dict[str, str] | None:
        event: dict[str, str] = {}
        async for line in self._lines:
            if not line:
                if event:
                    return event
                continue
            if line.startswith(":"):  # a comment (keep-alive)
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            event[name] = f"{event[name]}\n{value}" if name in event else value
        return event or None


class McpClient:
    """A 2025-11-25 streamable-HTTP client spoken by hand: one session on the gateway."""

    def __init__(self, http: httpx.AsyncClient, url: str, token: str) -> None:
        self.http, self.url = http, url
        self.headers = {**SSE_HEADERS, "Authorization": f"Bearer {token}"}

    async def open(self, version: str = "2025-11-25") -> None:
        """Initialize a session asking for protocol ``version``."""
        initialize = {**INITIALIZE, "params": {**INITIALIZE["params"], "protocolVersion": version}}
        response = await self.http.post(self.url, json=initialize, headers=self.headers)
        assert response.status_code == 200, response.text
        self.headers["Mcp-Session-Id"] = response.headers["mcp-session-id"]
        notice = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        response = await self.http.post(self.url, json=notice, headers=self.headers)
        assert response.status_code == 202, response.text

    def call(self, request_id: int, steps: int) -> Any:
        body = {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {
                "name": "peer__stepwise",
                "arguments": {"steps": steps},
                "_meta": {"progressToken": f"call-{request_id}"},
            },
        }
        return self.http.stream("POST", self.url, json=body, headers=self.headers)

    def resume(self, last_event_id: str) -> Any:
        headers = {**self.headers, "Accept": "text/event-stream", "Last-Event-ID": last_event_id}
        headers.pop("Content-Type")
        return self.http.stream("GET", self.url, headers=headers)


def message_of(event: dict[str, str]) -> Any:
    return json.loads(event["data"]) if event.get("data") else None


async def read_until_result(client: McpClient, last_id: str, seen: list[Any]) -> str:
    """Resume from ``last_id`` until the result arrives (as a client does: a stream that
    ends early is resumed again from the last id, after the retry delay); the messages
    go to ``seen``; returns the last event id."""
    for _ in range(5):
        async with client.resume(last_id) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = Sse(response)
            while (event := await events.next()) is not None:
                last_id = event.get("id", last_id)
                message = message_of(event)
                if message is not None:
                    seen.append(message)
                    if "result" in message:
                        return last_id
        await asyncio.sleep(RETRY_MS / 1000)
    raise AssertionError(f"no result after five resumptions; seen {seen}")


@contextlib.asynccontextmanager
async def session(api: Api, gateway_url: str) -> AsyncIterator[McpClient]:
    """The peer connected, a gateway token, and a session opened with it."""
    status, body = await api("POST", "dodo/api/mcp/start-auth", {"catalog_id": "peer"})
    assert body["state"] == "connected", body
    token = (await api("POST", "dodo/api/user/mcp-tokens", {"label": "resume"}))[1]["token"]
    async with httpx.AsyncClient(timeout=15) as http:
        client = McpClient(http, gateway_url, token)
        await client.open()
        yield client


async def start_and_drop(client: McpClient, request_id: int) -> tuple[dict[str, str], str]:
    """Call the tool, read the priming event and step 1, drop the connection and wait the
    retry delay (as clients do); returns the priming event and step 1's event id."""
    async with client.call(request_id, 3) as response:
        assert response.status_code == 200
        events = Sse(response)
        priming = await events.next()
        step_one = await events.next()
    assert priming is not None and step_one is not None
    assert message_of(step_one)["params"]["progress"] == 1
    await asyncio.sleep(RETRY_MS / 1000)
    return priming, step_one["id"]


def steps_and_result(seen: list[Any]) -> tuple[list[Any], str]:
    steps = [m["params"]["progress"] for m in seen if m.get("method") == "notifications/progress"]
    results = [m["result"]["content"][0]["text"] for m in seen if "result" in m]
    assert len(results) == 1, seen
    return steps, results[0]


async def _until_end(events: Sse) -> AsyncIterator[dict[str, str]]:
    while (event := await events.next()) is not None:
        yield event
        if "result" in (message_of(event) or {}):
            return


@pytest.mark.usefixtures("upstreams_closed_first")
class TestThroughTheGateway:
    """A hand-written 2025-11-25 client against /dodo/mcp, the stepwise tool upstream."""

    async def test_a_stream_starts_with_a_priming_event_and_its_retry(
        self, api: Api, gateway_url: str, gate: Gate
    ) -> None:
        gate.opened.set()
        async with session(api, gateway_url) as client, client.call(1, 1) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = Sse(response)
            priming = await events.next()
            rest = [e async for e in _until_end(events)]
        assert priming is not None and priming["id"] and priming["data"] == ""
        assert priming["retry"] == str(RETRY_MS)
        assert steps_and_result([message_of(e) for e in rest]) == ([1], "all 1 steps done")
        assert all(e["id"] for e in rest)

    async def test_a_session_opened_at_2025_11_25_is_primed_whatever_a_requests_header_says(
        self, api: Api, gateway_url: str, gate: Gate
    ) -> None:
        # The pinned conformance suite sends "MCP-Protocol-Version: 2025-03-26" on the
        # calls of a session it opened at 2025-11-25; its streams must still resume.
        async with session(api, gateway_url) as client:
            client.headers["MCP-Protocol-Version"] = "2025-03-26"
            priming, last_id = await start_and_drop(client, 7)
            gate.opened.set()
            seen: list[Any] = []
            await read_until_result(client, last_id, seen)
        assert priming["data"] == "" and priming["retry"] == str(RETRY_MS)
        assert steps_and_result(seen) == ([2, 3], "all 3 steps done")

    async def test_a_session_opened_at_an_older_version_gets_no_priming_event(
        self, api: Api, gateway_url: str, gate: Gate
    ) -> None:
        gate.opened.set()
        token = (await api("POST", "dodo/api/user/mcp-tokens", {"label": "old"}))[1]["token"]
        await api("POST", "dodo/api/mcp/start-auth", {"catalog_id": "peer"})
        async with httpx.AsyncClient(timeout=15) as http:
            client = McpClient(http, gateway_url, token)
            client.headers["MCP-Protocol-Version"] = "2025-06-18"
            await client.open("2025-06-18")  # a client too old to parse a priming event
            async with client.call(8, 2) as response:
                events = [e async for e in _until_end(Sse(response))]
        assert all(e.get("data") and "retry" not in e for e in events), events
        assert steps_and_result([message_of(e) for e in events]) == ([1, 2], "all 2 steps done")

    async def test_a_call_finished_while_disconnected_is_replayed(
        self, api: Api, gateway_url: str, gate: Gate
    ) -> None:
        async with session(api, gateway_url) as client:
            priming, last_id = await start_and_drop(client, 2)
            gate.opened.set()  # the call goes on without its client, and ends
            assert await asyncio.to_thread(gate.finished.wait, 15)
            seen: list[Any] = []
            await read_until_result(client, last_id, seen)
        assert steps_and_result(seen) == ([2, 3], "all 3 steps done")
        assert [m["id"] for m in seen if "id" in m] == [2]

    async def test_a_resumed_stream_carries_on_live(
        self, api: Api, gateway_url: str, gate: Gate
    ) -> None:
        async with session(api, gateway_url) as client:
            priming, last_id = await start_and_drop(client, 3)
            assert not gate.finished.is_set()
            async with client.resume(last_id) as response:
                events = Sse(response)
                primed = await events.next()  # the resumed stream is primed too
                gate.opened.set()  # only now does the call report steps 2 and 3
                seen = [message_of(e) async for e in _until_end(events)]
        assert primed is not None and primed["data"] == "" and primed["id"] != priming["id"]
        assert steps_and_result(seen) == ([2, 3], "all 3 steps done")

    async def test_an_unknown_or_foreign_event_id_replays_nothing(
        self, api: Api, gateway_url: str, gate: Gate
    ) -> None:
        gate.opened.set()
        async with session(api, gateway_url) as client:
            priming, last_id = await start_and_drop(client, 4)
            assert await asyncio.to_thread(gate.finished.wait, 15)
            other = McpClient(client.http, gateway_url, "")
            other.headers = {k: v for k, v in client.headers.items() if k != "Mcp-Session-Id"}
            await other.open()  # a second session of the same user
            for who, event_id in ((client, "987654321"), (client, "x"), (other, last_id)):
                async with who.resume(event_id) as response:
                    assert response.status_code == 200
                    assert await Sse(response).next() is None  # ends at once, nothing replayed
            seen: list[Any] = []
            await read_until_result(client, last_id, seen)  # its own session still can
        assert steps_and_result(seen) == ([2, 3], "all 3 steps done")

    async def test_a_sessions_events_go_when_it_ends(
        self, api: Api, gateway_url: str, gate: Gate, runtime_: DodoRuntime
    ) -> None:
        gate.opened.set()
        async with session(api, gateway_url) as client:
            async with client.call(6, 1) as response:
                assert len([e async for e in _until_end(Sse(response))]) == 3  # priming, 1, result
            events = (await runtime_.endpoint.endpoint()).manager.events
            assert events is not None and events.sessions_kept == 1
            response = await client.http.delete(client.url, headers=client.headers)
            assert response.status_code == 200
        assert (events.sessions_kept, events.events_kept, events.bytes_kept) == (0, 0, 0)


@pytest.mark.usefixtures("upstreams_closed_first")
class TestResumingOff:
    @pytest.fixture
    def dodo_config(self, dodo_config: dict[str, Any]) -> dict[str, Any]:
        return {**dodo_config, "resume_events_per_session": 0}

    async def test_no_priming_event_and_no_event_ids(
        self, api: Api, gateway_url: str, gate: Gate
    ) -> None:
        gate.opened.set()
        async with session(api, gateway_url) as client, client.call(5, 2) as response:
            events = [e async for e in _until_end(Sse(response))]
        assert all(e.get("data") and "id" not in e and "retry" not in e for e in events)
        assert steps_and_result([message_of(e) for e in events]) == ([1, 2], "all 2 steps done")
