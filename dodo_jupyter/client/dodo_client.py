"""Clients for code in a kernel: list and call the user's tools, read their resources
and fill in their prompts through the gateway, and use dodo's REST API (servers,
catalog, connecting) when the Jupyter server is known.

:class:`AsyncDodoClient` is the asyncio client; :class:`DodoClient` runs it on a private
event-loop thread, so its methods can be called from a notebook cell (whose own loop is
already running) or any other code. Gateway requests go through dodo's own MCP client
(:mod:`dodo_jupyter.upstream.wire`: stateless 2026-07-28 when the gateway offers it) on
dodo's HTTP stack (:func:`~dodo_jupyter.net.outbound.trusted_client`: a request's head
and body in one write, no proxy from the environment), one connection per event loop
kept open (:mod:`.gateway_link`) and shared by the clients of one gateway and token;
answers are read as plain JSON (:mod:`.answers`). Every request
has a total deadline (``timeout``). Errors are :class:`DodoClientError` with a message
that says what to do (a resource or prompt the gateway or its server refuses: their
words); a tool that answers with an error raises :class:`ToolError` carrying the
upstream message.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from .answers import (
    BadAnswer,
    items_of,
    prompt_result_of,
    prompts_of,
    resource_result_of,
    resources_of,
    templates_of,
    tool_result_of,
    tools_of,
)
from .discovery import Endpoint, discover
from .errors import DodoClientError, ToolError, clean_message
from .gateway_link import GatewayLink, HeldLinks
from .results import (
    Prompt,
    PromptResult,
    Resource,
    ResourceResult,
    ResourceTemplate,
    Tool,
    ToolResult,
)

if TYPE_CHECKING:
    from ..upstream.messages import RequestFailed

__all__ = ["AsyncDodoClient", "DodoClient"]

T = TypeVar("T")
#: At most this many pages of one listing are read (a server that never stops paging).
MAX_PAGES = 100


class _Refused(Exception):
    """The gateway answered a request with a JSON-RPC error (its message, for people)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


async def _ignore(message: dict[str, Any]) -> None:
    return None


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
        self._links = _held_links(self)
        #: Per tool, the arguments a 2026-07-28 call repeats as ``Mcp-Param-*`` headers.
        self._param_headers: dict[str, dict[tuple[str, ...], str]] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.endpoint.mcp_url} ({self.endpoint.source})>"

    # -- the gateway (MCP) --------------------------------------------------------------

    async def _open_link(self) -> GatewayLink:
        """A new connection to the gateway (stateless 2026-07-28 when offered)."""
        from .._version import __version__
        from ..net.outbound import trusted_client
        from ..upstream.wire import connect

        http = trusted_client(self.timeout, headers=self.endpoint.mcp_headers)
        try:
            target = await connect(http, self.endpoint.mcp_url, __version__)
        except BaseException:
            await http.aclose()
            raise
        return GatewayLink(http, target)

    async def _request(
        self, method: str, params: dict[str, Any], headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """One request to the gateway, within ``timeout``: its result. A JSON-RPC error is
        :class:`_Refused`; any other failure a :class:`DodoClientError`. It is sent again
        (once, on a new connection) only when the gateway cannot have acted on it: the
        connection was never made, or the gateway forgot the session (it restarted)."""
        from mcp.shared.exceptions import MCPError

        from ..upstream.messages import RequestFailed, SessionLost
        from ..upstream.wire import send_request

        try:
            async with asyncio.timeout(self.timeout):
                for attempt in range(2):
                    link = await self._links.link()
                    try:
                        return await send_request(
                            link.http,
                            link.target,
                            method,
                            params,
                            on_notification=_ignore,
                            headers=headers,
                        )
                    except (SessionLost, RequestFailed) as e:
                        await self._links.drop(link)
                        if attempt or (isinstance(e, RequestFailed) and not e.unsent):
                            raise
        except SessionLost:
            raise DodoClientError(
                f"The dodo gateway at {self.endpoint.mcp_url} forgot this kernel's session "
                "twice in a row: is the Jupyter server restarting? Try again in a moment."
            ) from None
        except RequestFailed as e:
            raise self._gateway_error(e) from None
        except MCPError as e:
            raise _Refused(e.error.message or "refused", e.error.code) from None
        except TimeoutError:
            raise DodoClientError(
                f"The dodo gateway at {self.endpoint.mcp_url} did not answer within "
                f"{self.timeout:g} s."
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        """Close the connection this event loop holds (others close with their loops)."""
        await self._links.close()

    def _gateway_error(self, error: RequestFailed) -> DodoClientError:
        url = self.endpoint.mcp_url
        if error.status in (401, 403):
            return DodoClientError(
                f"The dodo gateway refused this kernel's credentials (HTTP {error.status}): the "
                "token was revoked or the server restarted. Restart the kernel, or create a "
                "token in JupyterLab's MCP panel (Agent access) and set DODO_MCP_TOKEN."
            )
        if error.unsent:
            return DodoClientError(
                f"The dodo gateway at {url} cannot be reached: {error.reason}. Is the Jupyter "
                "server running, and is dodo enabled (jupyter server extension list)?"
            )
        text = error.reason or str(error).rstrip(".")
        if error.status is not None:
            text = f"HTTP {error.status}: {text}"
        return DodoClientError(f"The dodo gateway at {url} failed ({text}).")

    async def _ask(self, what: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """:meth:`_request`; a JSON-RPC error (the gateway's or its server's: an unknown
        URI, a refused argument) is a :class:`DodoClientError` that starts with ``what``
        and carries their message, as is an answer without MCP's shape."""
        try:
            return await self._request(method, params)
        except _Refused as e:
            raise DodoClientError(clean_message(f"{what}: {e}")) from None

    async def _listed(self, method: str, key: str) -> list[dict[str, Any]]:
        """Every item of a listing (``resources/list`` and its ``resources``), all pages."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = await self._ask(method, method, {"cursor": cursor} if cursor else {})
            items.extend(_shaped(self, functools.partial(items_of, page, key)))
            cursor = page.get("nextCursor") if isinstance(page.get("nextCursor"), str) else None
            if not cursor:
                break
        return items

    async def list_tools(self) -> list[Tool]:
        """The tools agents may use (switched on in the MCP panel)."""
        listed = await self._listed("tools/list", "tools")
        link = await self._links.link()
        if link.target.stateless:
            listed = self._absorb_param_headers(listed)
        return _shaped(self, lambda: tools_of(listed))

    def _absorb_param_headers(self, listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The listing without tools whose ``x-mcp-header`` annotations are invalid (a
        2026-07-28 client must drop them), remembering the others' header maps."""
        from mcp.shared.inbound import find_invalid_x_mcp_header, x_mcp_header_map

        kept = []
        self._param_headers = {}
        for tool in listed:
            schema = tool.get("inputSchema")
            if find_invalid_x_mcp_header(schema) is not None:
                continue
            header_map = x_mcp_header_map(schema)
            if header_map and isinstance(tool.get("name"), str):
                self._param_headers[tool["name"]] = header_map
            kept.append(tool)
        return kept

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        raise_on_error: bool = True,
        structured_only: bool = False,
    ) -> ToolResult:
        """Call a tool by its gateway name (``<server>__<tool>``).

        A tool error raises :class:`ToolError` (``raise_on_error=False`` returns it).
        With ``structured_only`` a successful result that has structured content comes
        without its text blocks (for a caller that reads only
        :attr:`~.results.ToolResult.value`, as the typed functions do)."""
        from mcp.shared.inbound import mcp_param_headers
        from mcp_types.jsonrpc import HEADER_MISMATCH

        from ..tool_results import STRUCTURED_ONLY_META_KEY

        arguments = arguments or {}
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        if structured_only:
            params["_meta"] = {STRUCTURED_ONLY_META_KEY: True}
        for attempt in range(2):
            header_map = self._param_headers.get(name)
            headers = mcp_param_headers(header_map, arguments) if header_map else None
            try:
                answer = await self._request("tools/call", params, headers)
                break
            except _Refused as e:
                # A tool whose arguments go in headers too, not listed yet: list, then again.
                if e.code != HEADER_MISMATCH or attempt:
                    raise DodoClientError(clean_message(f"{name}: {e}")) from None
                await self.list_tools()
        result = _shaped(self, lambda: tool_result_of(name, answer))
        if result.is_error and raise_on_error:
            raise ToolError(clean_message(f"{name}: {result.text or 'the tool failed'}"), result)
        return result

    async def list_resources(self) -> list[Resource]:
        """The resources of your connected servers, under gateway URIs."""
        listed = await self._listed("resources/list", "resources")
        return _shaped(self, lambda: resources_of(listed))

    async def list_resource_templates(self) -> list[ResourceTemplate]:
        """The resource templates of your connected servers, under gateway URIs."""
        listed = await self._listed("resources/templates/list", "resourceTemplates")
        return _shaped(self, lambda: templates_of(listed))

    async def read_resource(self, uri: str) -> ResourceResult:
        """Read a resource by its gateway URI (``dodo://<server>/<uri>``, as listed)."""
        answer = await self._ask(uri, "resources/read", {"uri": uri})
        return _shaped(self, lambda: resource_result_of(uri, answer))

    async def list_prompts(self) -> list[Prompt]:
        """The prompts of your connected servers (``<server>__<prompt>``)."""
        listed = await self._listed("prompts/list", "prompts")
        return _shaped(self, lambda: prompts_of(listed))

    async def get_prompt(self, name: str, /, **arguments: Any) -> PromptResult:
        """A prompt's messages, filled in with ``arguments``; MCP's arguments are text, so
        other values are sent as JSON (``3`` as ``"3"``, ``True`` as ``"true"``)."""
        texts = {
            key: value if isinstance(value, str) else json.dumps(value)
            for key, value in arguments.items()
        }
        answer = await self._ask(name, "prompts/get", {"name": name, "arguments": texts})
        return _shaped(self, lambda: prompt_result_of(name, answer))

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

        from ..net.failures import describe_failure

        url = endpoint.server_url + "dodo/api/" + path
        try:
            async with httpx2.AsyncClient(
                headers=endpoint.api_headers, timeout=self.timeout
            ) as http:
                response = await http.request(method, url, json=body)
        except httpx2.HTTPError as e:
            raise DodoClientError(
                f"The Jupyter server at {endpoint.server_url} cannot be reached: "
                f"{describe_failure(e)}. Is it running?"
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


#: The open connections, shared by every client of the same gateway, credentials and
#: timeout (code that makes a client per call does not open a connection per call).
_held: dict[tuple[Any, ...], HeldLinks] = {}
_held_lock = threading.Lock()


def _held_links(client: AsyncDodoClient) -> HeldLinks:
    endpoint = client.endpoint
    key = (endpoint.mcp_url, tuple(sorted(endpoint.mcp_headers.items())), client.timeout)
    with _held_lock:
        if key not in _held:
            _held[key] = HeldLinks(client._open_link)
        return _held[key]


def _shaped(client: AsyncDodoClient, read: Callable[[], T]) -> T:
    """``read()``, whose :class:`BadAnswer` becomes a :class:`DodoClientError`."""
    try:
        return read()
    except BadAnswer as e:
        raise DodoClientError(
            f"The dodo gateway at {client.endpoint.mcp_url} failed ({e})."
        ) from None


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
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        raise_on_error: bool = True,
        structured_only: bool = False,
    ) -> ToolResult:
        return self._run(
            self.aio.call_tool(
                name, arguments, raise_on_error=raise_on_error, structured_only=structured_only
            )
        )

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
