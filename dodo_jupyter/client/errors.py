"""What goes wrong for a client, each with a message that says what to do."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .results import ToolResult

__all__ = ["DodoClientError", "NotFoundError", "ToolError"]


class DodoClientError(RuntimeError):
    """A request to dodo failed; the message says what to check."""


class NotFoundError(DodoClientError):
    """No dodo gateway or Jupyter server could be found from this process."""


class ToolError(DodoClientError):
    """The tool answered with an error; :attr:`result` holds its full answer."""

    def __init__(self, message: str, result: ToolResult) -> None:
        super().__init__(message)
        self.result = result
