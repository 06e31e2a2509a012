"""The demo MCP server's resources and prompts, so the sidebar's Resources and Prompts
sections, ``%dodo resources`` and ``%dodo prompts`` have something to show offline.

=============================  ======================================================
``demo://readme``              a Markdown text about the demo
``demo://square.png``          a 32 px PNG square (binary)
``demo://config.json``         JSON: the demo's own settings
``demo://colours/{name}``      a template: a 16 px square of the colour ``name``
``summarise`` (prompt)         asks for a summary of ``text`` in ``words`` words
``explain_picture`` (prompt)   a message with the demo's PNG, asking what it shows
=============================  ======================================================
"""

from __future__ import annotations

import json

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts.base import Message, UserMessage
from mcp.server.mcpserver.utilities.types import Image

from .tools import make_png

__all__ = ["COLOURS", "register_demo_content"]

#: The colours ``demo://colours/{name}`` knows.
COLOURS = {"red": (220, 40, 40), "green": (40, 160, 70), "blue": (40, 90, 220)}

_README = """# The dodo demo server

A small MCP server on your own machine, with OAuth, tools, resources and prompts, so
you can try dodo without any account. Everything here is made up on the spot.
"""


def register_demo_content(mcp: MCPServer) -> None:
    """Add the demo's resources, resource template and prompts to ``mcp``."""

    @mcp.resource("demo://readme", mime_type="text/markdown")
    def readme() -> str:
        """What the demo server is."""
        return _README

    @mcp.resource("demo://square.png", mime_type="image/png")
    def square() -> bytes:
        """A 32 px teal square."""
        return make_png(32, (0, 128, 128))

    @mcp.resource("demo://config.json", mime_type="application/json")
    def config() -> str:
        """The demo's settings, as JSON."""
        return json.dumps({"server": "dodo demo", "tools": 9, "offline": True})

    @mcp.resource("demo://colours/{name}", mime_type="image/png")
    def colour(name: str) -> bytes:
        """A 16 px square of a colour: red, green or blue."""
        if name not in COLOURS:
            raise ValueError(f"No colour {name!r}: use one of {', '.join(COLOURS)}.")
        return make_png(16, COLOURS[name])

    @mcp.prompt()
    def summarise(text: str, words: str = "30") -> str:
        """Summarise a text in a few words."""
        return f"Summarise the following text in at most {words} words:\n\n{text}"

    @mcp.prompt()
    def explain_picture() -> list[Message]:
        """Ask what the demo's picture shows."""
        image = Image(data=make_png(32, (0, 128, 128)), format="png")
        return [UserMessage(content=image), UserMessage("What does this picture show?")]
