"""Clients for code in a kernel: list and call the user's tools, read their resources
and fill in their prompts through the gateway, and use dodo's REST API (servers,
catalog, connecting) when the Jupyter server is known.

:class:`AsyncDodoClient` is the asyncio client; :class:`DodoClient` runs it on a private
event-loop thread, so its methods can be called from a notebook cell (whose own loop is
already running) or any other code. Gateway requests go through one MCP client per event
loop, kept open (the MCP SDK's ``Client``, stateless 2026-07-28 when the gateway offers
it; :mod:`.held_session`), shared by the clients of one gateway and token. Errors are
:class:`DodoClientError` with a message that says what to do (a resource or prompt the
gateway or its server refuses: their words); a tool that answers with an error raises
:class:`ToolError` carrying the upstream message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from .discovery import Endpoint, discover
from .errors import DodoClientError, ToolError, clean_message
from .held_session import HeldSessions
from .results import (
    Prompt,
    PromptArgument,
    PromptResult,
    Resource,
    ResourceContent,
    ResourceResult,
    ResourceTemplate,
    Tool,
    ToolResult,
    origin_of,
)

__all__ = ["AsyncDodoClient", "DodoClient"]

T = TypeVar("T")
#: At most this many pages of one listing are read (a server that never stops paging).
MAX_PAGES = 100


def _short(error: BaseException) -> str:
    """What went wrong, in one short line a person can read: no exception class names,
    no validation dumps, no documentation links."""
    import httpx2  # only on the way out of a failure: kernels import this module early
    from pydantic import ValidationError

    from ..net.failures import describe_failure

    if isinstance(error, BaseExceptionGroup):
        return "; ".join(dict.fromkeys(_short(e) for e in error.exceptions))
    if isinstance(error, TimeoutError | OSError | httpx2.TransportError):
        return describe_failure(error)
    if isinstance(error, ValidationError):
        return "its answer did not have the shape MCP requires"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines or (len(lines) > 1 and "validation error" in lines[0]):
        return "an unexpected answer"
    return clean_message(lines[0], limit=240) or "an unexpected answer"


def _unreachable(error: BaseException) -> bool:
    """Whether ``error`` (or every failure of a group) is a connection never made."""
    import httpx2

    if isinstance(error, BaseExceptionGroup):
        return all(_unreachable(e) for e in error.exceptions)
    return isinstance(error, OSError | httpx2.ConnectError | httpx2.ConnectTimeout)


def _status_of(error: BaseException) -> int | None:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            status = _status_of(inner)
            if status is not None:
                return status
        return None
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


class AsyncDodoClient:
    """The user's tools and connections, from a kernel or any Python process.

    Parameters
    ----------
    endpoint:
        Where dodo is; found with :func:`~dodo_jupyter.client.discovery.discover` when
        not given.
    timeout:
        Seconds one request may take (tool calls included).
    """

    def __init__(self, endpoint: Endpoint | None = None, *, timeout: float = 120.0) -> None:
        self.endpoint = endpoint if endpoint is not None else discover()
        self.timeout = timeout
        self._sessions = _held_sessions(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.endpoint.mcp_url} ({self.endpoint.source})>"

    # -- the gateway (MCP) --------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _open_mcp(self, failed: list[int]) -> AsyncIterator[Any]:
        """A new MCP client to the gateway (stateless 2026-07-28 when offered); the status
        of every failed HTTP answer goes to ``failed`` (the SDK reports failures without
        it)."""
        import httpx2
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client

        async def record(response: httpx2.Response) -> None:
            if response.status_code >= 400:
                failed.append(response.status_code)

        async with httpx2.AsyncClient(
            headers=self.endpoint.mcp_headers,
            timeout=self.timeout,
            event_hooks={"response": [record]},
        ) as http:
            transport = streamable_http_client(self.endpoint.mcp_url, http_client=http)
            async with Client(transport, mode="auto", cache=None) as client:
                yield client

    @contextlib.asynccontextmanager
    async def _mcp(self) -> AsyncIterator[Any]:
        """This loop's MCP client to the gateway, kept open between requests
        (:mod:`.held_session`); failures become :class:`DodoClientError`."""
        failed: list[int] = []
        try:
            async with self._sessions.use(failed) as client:
                yield client
        except DodoClientError:
            raise
        except Exception as e:
            raise self._gateway_error(e, failed[-1] if failed else None) from None

    async def aclose(self) -> None:
        """Close the MCP client this event loop holds (others close with their loops)."""
        await self._sessions.close()

    def _gateway_error(self, error: BaseException, status: int | None) -> DodoClientError:
        url = self.endpoint.mcp_url
        status = status or _status_of(error)
        if status in (401, 403):
            return DodoClientError(
                f"The dodo gateway refused this kernel's credentials (HTTP {status}): the token "
                "was revoked or the server restarted. Restart the kernel, or create a token in "
                "JupyterLab's MCP panel (Agent access) and set DODO_MCP_TOKEN."
            )
        text = _short(error)
        if _unreachable(error):
            return DodoClientError(
                f"The dodo gateway at {url} cannot be reached: {text}. Is the Jupyter server "
                "running, and is dodo enabled (jupyter server extension list)?"
            )
        if status is not None:
            text = f"HTTP {status}: {text}"
        return DodoClientError(f"The dodo gateway at {url} failed ({text}).")

    async def list_tools(self) -> list[Tool]:
        """The tools agents may use (switched on in the MCP panel)."""
        async with self._mcp() as client:
            result = await client.list_tools()
        return [
            Tool(
                tool.name,
                tool.description or "",
                dict(tool.input_schema or {}),
                dict(tool.output_schema or {}),
            )
            for tool in result.tools
        ]

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None, *, raise_on_error: bool = True
    ) -> ToolResult:
        """Call a tool by its gateway name (``<server>__<tool>``).

        A tool error raises :class:`ToolError` (``raise_on_error=False`` returns it)."""
        async with self._mcp() as client:
            answer = await client.call_tool(name, arguments or {})
        dumped = answer.model_dump(by_alias=True, mode="json", exclude_none=True)
        result = ToolResult(
            name=name,
            content=list(dumped.get("content") or []),
            structured=dumped.get("structuredContent"),
            is_error=bool(answer.is_error),
        )
        if result.is_error and raise_on_error:
            raise ToolError(clean_message(f"{name}: {result.text or 'the tool failed'}"), result)
        return result

    async def _ask(self, what: str, request: Callable[[Any], Awaitable[T]]) -> T:
        """``request(client)`` in an MCP session; a JSON-RPC error answer (the gateway's
        or its server's: an unknown URI, a refused argument) is a :class:`DodoClientError`
        that starts with ``what`` and carries their message."""
        from mcp.shared.exceptions import MCPError

        refused = ""
        async with self._mcp() as client:
            try:
                return await request(client)
            except MCPError as e:
                refused = e.error.message or "refused"
        raise DodoClientError(clean_message(f"{what}: {refused}"))

    async def _listed(self, method: str, key: str) -> list[Any]:
        """Every item of a listing (``list_resources`` and its ``resources``), all pages."""

        async def pages(client: Any) -> list[Any]:
            items: list[Any] = []
            cursor: str | None = None
            for _ in range(MAX_PAGES):
                page = await getattr(client, method)(cursor=cursor)
                items.extend(getattr(page, key))
                cursor = page.next_cursor
                if not cursor:
                    break
            return items

        return await self._ask(method.replace("_", " "), pages)

    async def list_resources(self) -> list[Resource]:
        """The resources of your connected servers, under gateway URIs."""
        return [
            Resource(
                uri=str(r.uri),
                name=r.name,
                title=r.title or "",
                description=r.description or "",
                mime_type=r.mime_type or "",
                size=r.size,
                server_id=str(origin_of(r.meta).get("server", "")),
                original_uri=str(origin_of(r.meta).get("uri", "")),
            )
            for r in await self._listed("list_resources", "resources")
        ]

    async def list_resource_templates(self) -> list[ResourceTemplate]:
        """The resource templates of your connected servers, under gateway URIs."""
        return [
            ResourceTemplate(
                uri_template=t.uri_template,
                name=t.name,
                title=t.title or "",
                description=t.description or "",
                mime_type=t.mime_type or "",
                server_id=str(origin_of(t.meta).get("server", "")),
                original_uri_template=str(origin_of(t.meta).get("uriTemplate", "")),
            )
            for t in await self._listed("list_resource_templates", "resource_templates")
        ]

    async def read_resource(self, uri: str) -> ResourceResult:
        """Read a resource by its gateway URI (``dodo://<server>/<uri>``, as listed)."""
        answer = await self._ask(uri, lambda client: client.read_resource(uri))
        contents = [
            ResourceContent(
                uri=str(item.get("uri", uri)),
                mime_type=str(item.get("mimeType") or ""),
                text=item.get("text") if isinstance(item.get("text"), str) else None,
                blob=item.get("blob") if isinstance(item.get("blob"), str) else None,
            )
            for item in answer.model_dump(by_alias=True, mode="json")["contents"]
        ]
        return ResourceResult(uri, contents)

    async def list_prompts(self) -> list[Prompt]:
        """The prompts of your connected servers (``<server>__<prompt>``)."""
        return [
            Prompt(
                name=p.name,
                description=p.description or "",
                arguments=[
                    PromptArgument(a.name, a.description or "", bool(a.required))
                    for a in p.arguments or []
                ],
                title=p.title or "",
                server_id=str(origin_of(p.meta).get("server", "")),
                original_name=str(origin_of(p.meta).get("name", "")),
            )
            for p in await self._listed("list_prompts", "prompts")
        ]

    async def get_prompt(self, name: str, /, **arguments: Any) -> PromptResult:
        """A prompt's messages, filled in with ``arguments``; MCP's arguments are text, so
        other values are sent as JSON (``3`` as ``"3"``, ``True`` as ``"true"``)."""
        texts = {
            key: value if isinstance(value, str) else json.dumps(value)
            for key, value in arguments.items()
        }
        answer = await self._ask(name, lambda client: client.get_prompt(name, texts))
        dumped = answer.model_dump(by_alias=True, mode="json", exclude_none=True)
        return PromptResult(name, list(dumped.get("messages") or []), answer.description or "")

    # -- the REST API -------------------------------------------------------------------

    async def _api(self, method: str, path: str, body: Any = None) -> Any:
        endpoint = self.endpoint
        if endpoint.server_url is None or endpoint.api_headers is None:
            raise DodoClientError(
                "This needs the Jupyter server's API, which was not found from this process "
                "(no JupyterHub environment, no runtime file of the parent server). Use the "
                "MCP panel in JupyterLab instead."
            )
        import httpx2

        url = endpoint.server_url + "dodo/api/" + path
        try:
            async with httpx2.AsyncClient(
                headers=endpoint.api_headers, timeout=self.timeout
            ) as http:
                response = await http.request(method, url, json=body)
        except httpx2.HTTPError as e:
            raise DodoClientError(
                f"The Jupyter server at {endpoint.server_url} cannot be reached: "
                f"{_short(e)}. Is it running?"
            ) from None
        if response.status_code >= 400:
            try:
                message = response.json().get("message") or response.text
            except ValueError:
                message = response.text[:300]
            raise DodoClientError(f"{message} (HTTP {response.status_code})")
        return response.json()

    async def servers(self) -> list[dict[str, Any]]:
        """Your connections with their state."""
        return list((await self._api("GET", "mcp/servers"))["servers"])

    async def catalog(self) -> list[dict[str, Any]]:
        """The approved MCP servers you may connect."""
        return list((await self._api("GET", "mcp-catalog"))["entries"])

    async def tool_settings(self) -> list[dict[str, Any]]:
        """Every tool of your connections with its server and switch."""
        return list((await self._api("GET", "mcp/tools"))["tools"])

    async def start_connect(self, catalog_id: str) -> dict[str, Any]:
        """Start connecting a catalog entry: ``{state, connection_id[, authorize_url]}``."""
        result: dict[str, Any] = await self._api(
            "POST", "mcp/start-auth", {"catalog_id": catalog_id}
        )
        return result

    async def connection(self, connection_id: str) -> dict[str, Any] | None:
        for server in await self.servers():
            if server["id"] == connection_id:
                return server
        return None

    async def disconnect(self, catalog_id: str) -> int:
        """Disconnect every connection to a catalog entry; how many there were."""
        ids = [s["id"] for s in await self.servers() if s.get("catalog_id") == catalog_id]
        if not ids:
            raise DodoClientError(
                f"You have no connection to {catalog_id!r}: %dodo servers lists them."
            )
        for connection_id in ids:
            await self._api("POST", "mcp/delete-auth", {"connection_id": connection_id})
        return len(ids)


#: The open MCP clients, shared by every client of the same gateway, credentials and
#: timeout (code that makes a client per call does not open a connection per call).
_held: dict[tuple[Any, ...], HeldSessions] = {}
_held_lock = threading.Lock()


def _held_sessions(client: AsyncDodoClient) -> HeldSessions:
    endpoint = client.endpoint
    key = (endpoint.mcp_url, tuple(sorted(endpoint.mcp_headers.items())), client.timeout)
    with _held_lock:
        if key not in _held:
            _held[key] = HeldSessions(client._open_mcp)
        return _held[key]


class _LoopThread:
    """An event loop on a daemon thread that runs coroutines for synchronous callers."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="dodo-client", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result()


_shared_loop: _LoopThread | None = None
_shared_lock = threading.Lock()


def _loop_thread() -> _LoopThread:
    global _shared_loop
    with _shared_lock:
        if _shared_loop is None:
            _shared_loop = _LoopThread()
        return _shared_loop


class DodoClient:
    """:class:`AsyncDodoClient` for synchronous code (notebook cells, scripts, agents).

    ``DodoClient()`` finds dodo from the environment (see
    :mod:`dodo_jupyter.client.discovery`)."""

    def __init__(self, endpoint: Endpoint | None = None, *, timeout: float = 120.0) -> None:
        self.aio = AsyncDodoClient(endpoint, timeout=timeout)

    def __repr__(self) -> str:
        return f"<DodoClient {self.aio.endpoint.mcp_url} ({self.aio.endpoint.source})>"

    @property
    def endpoint(self) -> Endpoint:
        return self.aio.endpoint

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return _loop_thread().run(coro)

    def list_tools(self) -> list[Tool]:
        return self._run(self.aio.list_tools())

    def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None, *, raise_on_error: bool = True
    ) -> ToolResult:
        return self._run(self.aio.call_tool(name, arguments, raise_on_error=raise_on_error))

    def list_resources(self) -> list[Resource]:
        return self._run(self.aio.list_resources())

    def list_resource_templates(self) -> list[ResourceTemplate]:
        return self._run(self.aio.list_resource_templates())

    def read_resource(self, uri: str) -> ResourceResult:
        return self._run(self.aio.read_resource(uri))

    def list_prompts(self) -> list[Prompt]:
        return self._run(self.aio.list_prompts())

    def get_prompt(self, name: str, /, **arguments: Any) -> PromptResult:
        return self._run(self.aio.get_prompt(name, **arguments))

    def servers(self) -> list[dict[str, Any]]:
        return self._run(self.aio.servers())

    def catalog(self) -> list[dict[str, Any]]:
        return self._run(self.aio.catalog())

    def tool_settings(self) -> list[dict[str, Any]]:
        return self._run(self.aio.tool_settings())

    def start_connect(self, catalog_id: str) -> dict[str, Any]:
        return self._run(self.aio.start_connect(catalog_id))

    def connection(self, connection_id: str) -> dict[str, Any] | None:
        return self._run(self.aio.connection(connection_id))

    def disconnect(self, catalog_id: str) -> int:
        return self._run(self.aio.disconnect(catalog_id))

    def openai_tools(self) -> list[dict[str, Any]]:
        """The tools as OpenAI function-calling specs."""
        from .adapters import openai_tools

        return openai_tools(self.list_tools())

    def functions(self) -> dict[str, Any]:
        """The tools as Python functions by gateway name: keyword arguments, signatures
        and docstrings from their schemas, the result's value returned (the functions of
        ``from dodo_jupyter import tools``; see :mod:`.typed_api`)."""
        from .typed_api import tool_functions

        return tool_functions(self, self.list_tools())
