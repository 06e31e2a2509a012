"""The demo MCP server's tools: small, deterministic, and each with real behaviour.

==================  ===========================================================
``echo``            returns its text unchanged
``add``             adds two numbers
``utc_now``         the server's current UTC time, ISO 8601
``word_count``      words, lines and characters of a text
``random_numbers``  ``count`` integers from a seeded generator (same seed, same list)
``square_png``      a solid-colour PNG square (image content), built with zlib
``whoami``          the client id, subject and scopes of the caller's access token
``admin_report``    needs the admin scope: the step-up demonstration
``toggle_extra_tool``  adds or removes ``shout`` and sends ``tools/list_changed``
==================  ===========================================================

Tools read the caller's token from the HTTP request the SDK attaches to each
message (``ctx.request_context.request``): the session's task was started by the
first request, so a context variable would show the *first* caller's token.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import struct
import zlib
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image

__all__ = ["EXTRA_TOOL_NAME", "caller_token", "make_png", "register_demo_tools"]

#: The tool ``toggle_extra_tool`` adds and removes.
EXTRA_TOOL_NAME = "shout"

_HEX_COLOUR = re.compile(r"^#?([0-9a-fA-F]{6})$")
_MAX_RANDOM = 1000
_MAX_PNG_SIZE = 256


def make_png(size: int, rgb: tuple[int, int, int]) -> bytes:
    """A ``size`` x ``size`` solid-colour 8-bit RGB PNG (PNG spec §5, §11.2)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit, truecolour
    row = b"\x00" + bytes(rgb) * size  # filter type 0 ("None") for every scanline
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * size))
        + chunk(b"IEND", b"")
    )


def caller_token(ctx: Context) -> AccessToken | None:
    """The access token of the HTTP request that carried this tool call."""
    request: Any = ctx.request_context.request
    scope = getattr(request, "scope", None)
    user = scope.get("user") if isinstance(scope, dict) else None
    if isinstance(user, AuthenticatedUser):
        return user.access_token
    return get_access_token()


def register_demo_tools(mcp: MCPServer, *, admin_scope: str | None) -> None:
    """Add the demo tools to ``mcp``.

    Parameters
    ----------
    mcp:
        The server to add them to.
    admin_scope:
        The scope ``admin_report`` requires; ``None`` lets any token call it.
    """

    @mcp.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @mcp.tool()
    def add(a: float, b: float) -> float:
        """Add two numbers."""
        return a + b

    @mcp.tool()
    def utc_now() -> str:
        """The server's current time in UTC, ISO 8601."""
        return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

    @mcp.tool()
    def word_count(text: str) -> dict[str, int]:
        """Count the words, lines and characters of a text."""
        return {"words": len(text.split()), "lines": len(text.splitlines()), "chars": len(text)}

    @mcp.tool()
    def random_numbers(count: int = 5, seed: int = 0) -> list[int]:
        """``count`` integers in [0, 100] from a generator seeded with ``seed``."""
        if not 1 <= count <= _MAX_RANDOM:
            raise ToolError(f"count must be between 1 and {_MAX_RANDOM}, got {count!r}")
        rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not a secret
        return [rng.randint(0, 100) for _ in range(count)]

    @mcp.tool()
    def square_png(colour: str = "#3366cc", size: int = 16) -> Image:
        """A solid-colour PNG square; ``colour`` is ``#rrggbb``."""
        match = _HEX_COLOUR.match(colour)
        if match is None:
            raise ToolError(f"colour must look like '#3366cc', got {colour!r}")
        if not 1 <= size <= _MAX_PNG_SIZE:
            raise ToolError(f"size must be between 1 and {_MAX_PNG_SIZE}, got {size!r}")
        rgb = bytes.fromhex(match.group(1))
        return Image(data=make_png(size, (rgb[0], rgb[1], rgb[2])), format="png")

    @mcp.tool()
    def whoami(ctx: Context) -> dict[str, Any]:
        """The client id, subject and scopes of the access token this call used."""
        token = caller_token(ctx)
        if token is None:
            raise ToolError("this call carried no access token")
        return {
            "client_id": token.client_id,
            "subject": token.subject,
            "scopes": list(token.scopes),
            "resource": token.resource,
            "expires_at": token.expires_at,
        }

    @mcp.tool()
    async def admin_report(ctx: Context) -> dict[str, Any]:
        """An administrator's report. Needs the admin scope (step-up authorization)."""
        token = caller_token(ctx)
        # The HTTP middleware answers 403 first; this is the second line of defence.
        if admin_scope is not None and (token is None or admin_scope not in token.scopes):
            raise ToolError(f"admin_report needs the {admin_scope!r} scope")
        return {
            "report": "all systems nominal",
            "tools": sorted(t.name for t in await mcp.list_tools()),
            "client_id": token.client_id if token else None,
        }

    def shout(text: str) -> str:
        """Return the text in capitals (added by toggle_extra_tool)."""
        return text.upper()

    @mcp.tool()
    async def toggle_extra_tool(ctx: Context) -> dict[str, Any]:
        """Add the ``shout`` tool, or remove it if present; notifies tools/list_changed."""
        present = any(t.name == EXTRA_TOOL_NAME for t in await mcp.list_tools())
        if present:
            mcp.remove_tool(EXTRA_TOOL_NAME)
        else:
            mcp.add_tool(shout, name=EXTRA_TOOL_NAME)
        await ctx.notify_tools_changed()  # 2026-07-28 subscriptions/listen streams
        try:  # the 2025-11-25 handshake: a notification on the session's stream
            await ctx.session.send_tool_list_changed()
        except Exception:  # noqa: S110 - a stateless request has no stream to notify on
            pass
        return {"tool": EXTRA_TOOL_NAME, "present": not present}
