"""The gateway's live sessions without a server: who hears what."""

from __future__ import annotations

import asyncio
from typing import Any

from dodo_jupyter.gateway import live as live_module
from dodo_jupyter.gateway.live import Downstream, LiveSessions


class Channel:
    """A session's channel outside requests: what it was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    async def notify(self, method: str, params: Any = None) -> None:
        self.sent.append((method, params))


async def test_each_user_hears_only_of_their_own_changes() -> None:
    generation = [0]
    live = LiveSessions(lambda: generation[0])
    alice, bob = Downstream("alice", Channel()), Downstream("bob", Channel())
    live.add(alice)
    live.add(bob)
    alice.subscriptions.add("dodo://docs/file:///a")
    live.changed("alice", ("tools",))
    await live.upstream_event(
        "alice",
        "docs",
        {"method": "notifications/resources/updated", "params": {"uri": "file:///a"}},
    )
    await live.upstream_event(
        "alice",
        "docs",
        {"method": "notifications/message", "params": {"level": "info", "data": "x"}},
    )
    await asyncio.sleep(live_module.SETTLE_SECONDS + 0.1)
    assert alice.outbound.sent == [
        ("notifications/resources/updated", {"uri": "dodo://docs/file:///a"}),
        ("notifications/message", {"level": "info", "data": "x", "logger": "docs"}),
        ("notifications/tools/list_changed", None),
    ]
    assert bob.outbound.sent == []

    generation[0] += 1  # a connection changed: every user with an open session re-lists
    await asyncio.sleep(live_module.POLL_SECONDS + live_module.SETTLE_SECONDS + 0.2)
    assert ("notifications/prompts/list_changed", None) in bob.outbound.sent
    live.remove(alice)
    live.remove(bob)
    await live.close()


async def test_a_session_hears_logs_at_or_above_its_level() -> None:
    live = LiveSessions(lambda: 0)
    quiet = Downstream("alice", Channel(), log_level="error")
    live.add(quiet)
    for level in ("debug", "warning", "error", "critical"):
        await live.logged("alice", "docs", {"level": level, "data": level, "logger": "io"})
    assert [p["data"] for _, p in quiet.outbound.sent] == ["error", "critical"]
    assert {p["logger"] for _, p in quiet.outbound.sent} == {"docs/io"}
    await live.close()


class CallingSession:
    """The calling client's session as a relay sees it: what it was sent on the call."""

    can_send_request = True
    client_capabilities = None

    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send_notification(self, notification: Any, related_request_id: Any) -> None:
        self.sent.append((notification.params.logger, related_request_id))


async def test_a_malformed_log_message_is_dropped_and_the_call_goes_on() -> None:
    from dodo_jupyter.gateway.relay import DownstreamRelay

    calling = CallingSession()
    relay = DownstreamRelay(calling, 7, "docs")
    await relay.notify("notifications/message", {"level": "not-a-level", "data": "x"})
    await relay.notify("notifications/message", {"level": "info", "data": "x", "logger": "io"})
    assert calling.sent == [("docs/io", 7)]
