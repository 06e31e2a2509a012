"""What goes wrong for a client, each with a message that says what to do."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .results import ToolResult

__all__ = ["DodoClientError", "NotFoundError", "ToolError", "clean_message"]

#: What no message to a person should carry: pydantic's links to its documentation, its
#: ``[type=…, input_value=…, input_type=…]`` details, and exception class names in front
#: of a message (``MCPError: `` where a server's error was passed on).
_NOISE = re.compile(
    r"(For further information visit )?https?://errors\.pydantic\.dev\S*|\[type=[^\]]*\]"
    r"|\b[A-Z][A-Za-z]*(?:Error|Exception): "
)


#: A link in a message (a consent URL, say).
_LINK = re.compile(r"https?://\S+")


def clean_message(text: str, limit: int = 400) -> str:
    """``text`` as one line of at most ``limit`` characters, without library internals
    (an upstream server's validation errors often carry them). A link is never cut (a
    cut one leads nowhere): the line then ends with it."""
    one = " ".join(_NOISE.sub(" ", text).split())
    if len(one) <= limit:
        return one
    cut = limit - 1
    for link in _LINK.finditer(one):
        if link.start() < cut < link.end():
            cut = link.end()
    return one[:cut] + "…"


class DodoClientError(RuntimeError):
    """A request to dodo failed; the message says what to check."""


class NotFoundError(DodoClientError):
    """No dodo gateway or Jupyter server could be found from this process."""


class ToolError(DodoClientError):
    """The tool answered with an error; :attr:`result` holds its full answer."""

    def __init__(self, message: str, result: ToolResult) -> None:
        super().__init__(message)
        self.result = result
