"""Tools and tool results as a notebook shows them.

A :class:`ToolResult` keeps the MCP content blocks as plain dictionaries, offers the
result as a Python value (:attr:`ToolResult.value`) and renders itself richly in
JupyterLab: text as Markdown, images inline, embedded resources by URI with their text,
structured content as JSON.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Tool", "ToolResult"]

_MAX_RESOURCE_TEXT = 20_000


@dataclass(frozen=True)
class Tool:
    """A tool the gateway exposes (``<server>__<tool>``)."""

    name: str
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=dict)

    @property
    def server_id(self) -> str:
        return self.name.split("__", 1)[0] if "__" in self.name else ""


@dataclass(frozen=True)
class ToolResult:
    """What a tool answered."""

    name: str
    content: list[dict[str, Any]]
    structured: Any = None
    is_error: bool = False

    @property
    def text(self) -> str:
        """The text blocks, joined by blank lines."""
        return "\n\n".join(
            str(block.get("text", "")) for block in self.content if block.get("type") == "text"
        )

    @property
    def value(self) -> Any:
        """The result as a Python value: the structured content when there is some, else
        a text that is JSON parsed, else the text; the result itself when it has no text
        (images, resources)."""
        if self.structured is not None:
            return self.structured
        if not any(block.get("type") == "text" for block in self.content):
            return self
        text = self.text
        try:
            return json.loads(text)
        except ValueError:
            return text

    def __repr__(self) -> str:
        kinds = ", ".join(str(block.get("type")) for block in self.content) or "no content"
        flag = " error" if self.is_error else ""
        return f"<ToolResult{flag} {self.name}: {kinds}>"

    @property
    def structured_adds(self) -> bool:
        """Whether the structured content says more than the text: not when the text is
        the same JSON (or the MCP SDK's ``{"result": …}`` wrapping of it)."""
        if self.structured is None:
            return False
        try:
            parsed = json.loads(self.text)
        except ValueError:
            return True
        return self.structured not in (parsed, {"result": parsed})

    def _plain(self) -> str:
        parts = []
        for block in self.content:
            kind = block.get("type")
            if kind == "text":
                parts.append(str(block.get("text", "")))
            elif kind in ("image", "audio"):
                parts.append(f"[{kind} {block.get('mimeType', '')}]")
            elif kind == "resource":
                resource = block.get("resource") or {}
                parts.append(f"[resource {resource.get('uri', '')}]")
            elif kind == "resource_link":
                parts.append(f"[link {block.get('uri', '')}]")
        if self.structured_adds:
            parts.append(json.dumps(self.structured, indent=2, default=str))
        text = "\n\n".join(parts)
        return f"Error from {self.name}:\n{text}" if self.is_error else text

    def _html(self) -> str:
        parts: list[str] = []
        for block in self.content:
            kind = block.get("type")
            if kind == "text":
                parts.append(f"<pre>{html.escape(str(block.get('text', '')))}</pre>")
            elif kind == "image":
                mime = html.escape(str(block.get("mimeType", "image/png")), quote=True)
                data = html.escape(str(block.get("data", "")), quote=True)
                parts.append(f'<img src="data:{mime};base64,{data}" alt="image from the tool">')
            elif kind == "resource":
                parts.append(_resource_html(block.get("resource") or {}))
            elif kind == "resource_link":
                uri = html.escape(str(block.get("uri", "")))
                parts.append(f"<p>Resource link: <code>{uri}</code></p>")
            else:
                parts.append(f"<p>[{html.escape(str(kind))} content]</p>")
        if self.structured_adds:
            dumped = json.dumps(self.structured, indent=2, default=str)
            parts.append(
                f"<details open><summary>structured content</summary>"
                f"<pre>{html.escape(dumped)}</pre></details>"
            )
        if self.is_error:
            parts.insert(0, f"<p><strong>Error from {html.escape(self.name)}</strong></p>")
        return "\n".join(parts)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        bundle = {"text/plain": self._plain()}
        only_text = all(block.get("type") == "text" for block in self.content)
        if only_text and not self.structured_adds and not self.is_error:
            bundle["text/markdown"] = self.text
        else:
            bundle["text/html"] = self._html()
        return bundle

    def _ipython_display_(self) -> None:
        """In IPython: one output per part, so images are image outputs (``image/png``,
        …) that JupyterLab and exported notebooks show as pictures; text and the rest as
        one rich output; each shown once."""
        from IPython.display import display

        images = [b for b in self.content if b.get("type") == "image" and b.get("data")]
        if not images:
            display(self._repr_mimebundle_(), raw=True)
            return
        rest = ToolResult(
            self.name,
            [b for b in self.content if b not in images],
            self.structured,
            self.is_error,
        )
        if rest.content or rest.structured_adds or rest.is_error:
            display(rest._repr_mimebundle_(), raw=True)
        for image in images:
            mime = str(image.get("mimeType") or "image/png")
            display({mime: image["data"], "text/plain": f"[image {mime}]"}, raw=True)


def _resource_html(resource: dict[str, Any]) -> str:
    uri = html.escape(str(resource.get("uri", "")))
    if "text" in resource:
        body = html.escape(str(resource["text"])[:_MAX_RESOURCE_TEXT])
        return f"<details><summary>Resource <code>{uri}</code></summary><pre>{body}</pre></details>"
    mime = html.escape(str(resource.get("mimeType", "binary")))
    size = len(str(resource.get("blob", ""))) * 3 // 4
    return f"<p>Resource <code>{uri}</code> ({mime}, about {size} bytes)</p>"
