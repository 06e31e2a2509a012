"""Tools, resources, prompts and what they answer, as a notebook shows them.

A :class:`ToolResult` keeps the MCP content blocks as plain dictionaries, offers the
result as a Python value (:attr:`ToolResult.value`) and renders itself richly in
JupyterLab: text as Markdown, images inline, embedded resources by URI with their text,
structured content as JSON.

A :class:`ResourceResult` (what reading a :class:`Resource` gave) offers its contents as
text, bytes or parsed JSON and shows each :class:`ResourceContent` as what it is: an
image as an image, JSON as JupyterLab's JSON viewer, Markdown as Markdown, other text as
text, other bytes by size and type. A :class:`PromptResult` (a :class:`Prompt` filled
in) shows its messages by role, images inline.

Nothing an MCP server sends is rendered as HTML of its own: text is escaped, and only
raster image types are shown as images.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

__all__ = [
    "Prompt",
    "PromptArgument",
    "PromptResult",
    "Resource",
    "ResourceContent",
    "ResourceResult",
    "ResourceTemplate",
    "Tool",
    "ToolResult",
]

_MAX_RESOURCE_TEXT = 20_000
#: Image types a notebook shows as pictures (not SVG: it can carry scripts).
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
#: ``_meta`` key of a listed item's origin at the gateway (``{"server", "uri"|"name"}``).
ORIGIN_KEY = "io.github.dodo-jupyter/origin"
_VARIABLE = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True)
class Tool:
    """A tool the gateway exposes (``<server>__<tool>``)."""

    name: str
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=dict)
    #: The JSON Schema of its structured content ({} when it declares none).
    output_schema: dict[str, Any] = field(default_factory=dict)

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
        a text that is JSON parsed, else the text; the result itself (which shows its
        images as images) when it has content other than text (images, resources)."""
        if self.structured is not None:
            return self.structured
        if not self.content or any(block.get("type") != "text" for block in self.content):
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


# -- resources ----------------------------------------------------------------------------


def origin_of(meta: Any) -> dict[str, Any]:
    """The gateway's ``{"server": alias, …}`` of a listed item (its ``_meta``)."""
    origin = meta.get(ORIGIN_KEY) if isinstance(meta, dict) else None
    return origin if isinstance(origin, dict) else {}


@dataclass(frozen=True)
class Resource:
    """A resource of one of your servers, under its gateway URI
    (``dodo://<server>/<the server's own URI>``); read it with ``read_resource(uri)``."""

    uri: str
    name: str = ""
    title: str = ""
    description: str = ""
    mime_type: str = ""
    size: int | None = None
    server_id: str = ""
    original_uri: str = ""


@dataclass(frozen=True)
class ResourceTemplate:
    """A family of resources (RFC 6570 ``uri_template``, e.g.
    ``dodo://docs/file:///{path}``); :meth:`expand` makes a URI to read."""

    uri_template: str
    name: str = ""
    title: str = ""
    description: str = ""
    mime_type: str = ""
    server_id: str = ""
    original_uri_template: str = ""

    @property
    def variables(self) -> list[str]:
        """The template's variable names, in order."""
        return _VARIABLE.findall(self.uri_template)

    def expand(self, **values: Any) -> str:
        """The URI with each ``{name}`` replaced by its value, percent-encoded (RFC 6570
        level 1); a variable without a value raises :class:`KeyError` naming it."""
        missing = [name for name in self.variables if name not in values]
        if missing:
            raise KeyError(f"{self.uri_template} needs {', '.join(missing)}")
        return _VARIABLE.sub(lambda m: quote(str(values[m.group(1)]), safe=""), self.uri_template)


@dataclass(frozen=True)
class ResourceContent:
    """One part of what a resource read gave: ``text``, or ``blob`` (base64)."""

    uri: str
    mime_type: str = ""
    text: str | None = None
    blob: str | None = None

    @property
    def data(self) -> bytes:
        """The content as bytes: the blob decoded, or the text in UTF-8."""
        if self.text is not None:
            return self.text.encode()
        try:
            return base64.b64decode(self.blob or "", validate=False)
        except (binascii.Error, ValueError):
            return b""

    @property
    def is_json(self) -> bool:
        """Text whose type is JSON (``application/json``, ``…+json``)."""
        mime = self.mime_type.split(";")[0].strip().lower()
        return self.text is not None and (mime == "application/json" or mime.endswith("+json"))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        mime = self.mime_type.split(";")[0].strip().lower()
        if self.text is None:
            size = len(self.data)
            label = f"[{size} bytes of {mime or 'binary data'}: {self.uri}]"
            if mime in IMAGE_TYPES and self.blob:
                return {mime: self.blob, "text/plain": label}
            return {"text/plain": label}
        if self.is_json:
            try:
                parsed = json.loads(self.text)
            except ValueError:
                return {"text/plain": self.text}
            return {"application/json": parsed, "text/plain": json.dumps(parsed, indent=2)}
        if mime == "text/markdown":
            return {"text/markdown": self.text, "text/plain": self.text}
        return {"text/plain": self.text}


@dataclass(frozen=True)
class ResourceResult:
    """What reading a resource gave: usually one :class:`ResourceContent`.

    :attr:`text`, :attr:`data` and :meth:`json` read it as text, bytes or JSON;
    :attr:`value` is the most useful of those. In a notebook each content shows as what
    it is (an image, JSON, Markdown, text, or its size).
    """

    uri: str
    contents: list[ResourceContent]

    @property
    def text(self) -> str:
        """The text contents, joined by newlines ("" when all are binary)."""
        return "\n".join(c.text for c in self.contents if c.text is not None)

    @property
    def data(self) -> bytes:
        """All contents as bytes (blobs decoded, texts in UTF-8)."""
        return b"".join(c.data for c in self.contents)

    @property
    def mime_type(self) -> str:
        """The first content's type ("" when it has none)."""
        return self.contents[0].mime_type if self.contents else ""

    def json(self) -> Any:
        """The text parsed as JSON; :class:`ValueError` saying so when it is not."""
        try:
            return json.loads(self.text)
        except ValueError as e:
            raise ValueError(f"{self.uri} is not JSON ({e}).") from None

    @property
    def value(self) -> Any:
        """JSON contents parsed, other text as ``str``, binary contents as ``bytes``."""
        if any(c.text is None for c in self.contents):
            return self.data
        if any(c.is_json for c in self.contents):
            try:
                return self.json()
            except ValueError:
                pass
        return self.text

    def __repr__(self) -> str:
        kinds = ", ".join(
            c.mime_type or ("text" if c.text is not None else "binary") for c in self.contents
        )
        return f"<ResourceResult {self.uri}: {kinds or 'no content'}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        if len(self.contents) == 1:
            return self.contents[0]._repr_mimebundle_()
        if not self.contents:
            return {"text/plain": f"{self.uri} has no content."}
        return {
            "text/plain": "\n\n".join(
                str(c._repr_mimebundle_()["text/plain"]) for c in self.contents
            )
        }

    def _ipython_display_(self) -> None:
        """In IPython: one output per content, so each shows as what it is."""
        from IPython.display import display

        if len(self.contents) <= 1:
            display(self._repr_mimebundle_(), raw=True)
            return
        for content in self.contents:
            display(content._repr_mimebundle_(), raw=True)


# -- prompts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptArgument:
    """One argument of a prompt (a text)."""

    name: str
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Prompt:
    """A prompt of one of your servers (``<server>__<prompt>``); fill it in with
    ``get_prompt(name, **arguments)``."""

    name: str
    description: str = ""
    arguments: list[PromptArgument] = field(default_factory=list)
    title: str = ""
    server_id: str = ""
    original_name: str = ""


@dataclass(frozen=True)
class PromptResult:
    """A prompt's messages (``{"role", "content"}`` dictionaries, content as MCP's
    content blocks); :attr:`text` is their text."""

    name: str
    messages: list[dict[str, Any]]
    description: str = ""

    @property
    def text(self) -> str:
        """The text of every message, joined by blank lines."""
        return "\n\n".join(
            str(m["content"].get("text", ""))
            for m in self.messages
            if isinstance(m.get("content"), dict) and m["content"].get("type") == "text"
        )

    def __repr__(self) -> str:
        return f"<PromptResult {self.name}: {len(self.messages)} messages>"

    def _plain(self) -> str:
        parts = []
        for message in self.messages:
            block = message.get("content") or {}
            parts.append(f"{message.get('role', '?')}: {_block_plain(block)}")
        return "\n\n".join(parts) or f"{self.name} has no messages."

    def _html(self) -> str:
        parts = []
        if self.description:
            parts.append(f"<p><em>{html.escape(self.description)}</em></p>")
        for message in self.messages:
            role = html.escape(str(message.get("role", "?")))
            body = _block_html(message.get("content") or {}, "image from the prompt")
            parts.append(f"<div><strong>{role}</strong>{body}</div>")
        return "\n".join(parts) or f"<p>{html.escape(self.name)} has no messages.</p>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self._plain(), "text/html": self._html()}


def _block_plain(block: dict[str, Any]) -> str:
    """One content block as a line of text."""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind in ("image", "audio"):
        return f"[{kind} {block.get('mimeType', '')}]"
    if kind == "resource":
        resource = block.get("resource") or {}
        text = resource.get("text")
        uri = resource.get("uri", "")
        return f"[resource {uri}]\n{text}" if isinstance(text, str) else f"[resource {uri}]"
    if kind == "resource_link":
        return f"[link {block.get('uri', '')}]"
    return f"[{kind} content]"


def _block_html(block: dict[str, Any], alt: str) -> str:
    """One content block as HTML (text escaped, only raster images as images)."""
    kind = block.get("type")
    if kind == "text":
        return f"<pre>{html.escape(str(block.get('text', '')))}</pre>"
    if kind == "image" and str(block.get("mimeType", "")) in IMAGE_TYPES:
        mime = html.escape(str(block["mimeType"]), quote=True)
        data = html.escape(str(block.get("data", "")), quote=True)
        return f'<img src="data:{mime};base64,{data}" alt="{alt}">'
    if kind == "resource":
        return _resource_html(block.get("resource") or {})
    if kind == "resource_link":
        return f"<p>Resource link: <code>{html.escape(str(block.get('uri', '')))}</code></p>"
    return f"<p>{html.escape(_block_plain(block))}</p>"
