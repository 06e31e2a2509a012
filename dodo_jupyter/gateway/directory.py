"""Resources, prompts, completion and logging at the gateway: everything a user's
connected servers offer besides tools, under one set of names.

* **Resources** and **resource templates** are listed from every server that declared
  the ``resources`` capability (concurrently, each within the gateway's server timeout;
  a slow or broken server's items are simply absent) under gateway URIs
  (:mod:`.uris`); a read, a subscription or a completion is routed by the URI's server
  alias, and the URIs in what comes back are mapped again.
* **Prompts** are named like tools (``<server>__<prompt>``, :mod:`.naming`); a get or a
  completion is routed by the name, from the user's last prompt listing (listed again
  when the name is not in it).
* **Logging**: ``logging/setLevel`` is sent to every server of the user that declared
  ``logging``.
* **What a server keeps per session** (the subscriptions, the log level) is asked for
  again whenever the server's session opens anew: after the connection broke or the
  server forgot the session, and after a new sign-in or a refresh replaced it
  (:meth:`Directory.restore`, :meth:`Directory.reopen`). Without this, a client
  subscribed before would hear of no update again.

Upstream JSON-RPC errors keep their code and message (an agent reading a resource that
does not exist gets the server's "resource not found"); a name or URI the gateway cannot
route is :class:`~dodo_jupyter.exceptions.NotFound` with a message saying what to do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import mcp_types as types

from ..exceptions import NotFound, ValidationFailed
from .caller import outbound_meta
from .naming import aggregate_names
from .uris import gateway_uri, origin_meta, split_uri

if TYPE_CHECKING:
    from ..store.models import MCPConnection
    from ..upstream import UpstreamSession

__all__ = ["Directory", "Server", "Servers"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Server:
    """One of a user's usable connections, as the directory sees it."""

    alias: str
    row: MCPConnection
    session: UpstreamSession


class Servers(Protocol):
    """Where the directory finds a user's servers (the gateway service)."""

    #: Seconds one server may take to answer a listing.
    server_timeout: float

    async def servers(self, username: str) -> list[Server]:
        """The user's usable connections, with their shared sessions."""
        ...


@dataclass
class _Kept:
    """What one connection's server was asked to keep for its session."""

    username: str
    #: The resources subscribed to: gateway URI → the server's own URI.
    subscribed: dict[str, str]


@dataclass(frozen=True)
class _PromptRoute:
    connection_id: str
    alias: str
    original: str


class Directory:
    """A user's resources, prompts and completions across their servers (see the module
    docstring); built by and for a :class:`~.service.GatewayService`."""

    def __init__(self, service: Servers) -> None:
        self._service = service
        #: Each user's prompts by gateway name, from their last prompt listing.
        self._prompts: dict[str, dict[str, _PromptRoute]] = {}
        #: Subscriptions by connection id, and the log level each user last set.
        self._kept: dict[str, _Kept] = {}
        self._levels: dict[str, str] = {}
        self._background: set[asyncio.Task[None]] = set()

    # -- fan-out --------------------------------------------------------------------------

    async def _offering(self, username: str, capability: str) -> list[Server]:
        """The user's servers that declared ``capability`` (and answered in time)."""
        servers = await self._service.servers(username)

        async def offers(server: Server) -> bool:
            try:
                return await asyncio.wait_for(
                    server.session.offers(capability), self._service.server_timeout
                )
            except Exception as e:  # unreachable now: its tools listing reports why
                log.debug("dodo: %s unavailable for %s: %s", server.alias, capability, e)
                return False

        answers = await asyncio.gather(*(offers(server) for server in servers))
        return [server for server, yes in zip(servers, answers, strict=True) if yes]

    async def _list(
        self, username: str, capability: str, method: str, key: str
    ) -> list[tuple[Server, dict[str, Any]]]:
        """Every item of ``method`` from the servers offering ``capability``."""
        servers = await self._offering(username, capability)

        async def items(server: Server) -> list[dict[str, Any]]:
            try:
                return await asyncio.wait_for(
                    server.session.list_all(method, key, outbound_meta()),
                    self._service.server_timeout,
                )
            except Exception as e:
                log.info("dodo: %s did not answer %s: %s", server.alias, method, e)
                return []

        listed = await asyncio.gather(*(items(server) for server in servers))
        return [
            (server, item) for server, found in zip(servers, listed, strict=True) for item in found
        ]

    async def _server(self, username: str, alias: str, what: str) -> Server:
        for server in await self._service.servers(username):
            if server.alias == alias:
                return server
        raise NotFound(
            f"No connected server {alias!r} offers {what}: list them again, or connect the "
            "server in JupyterLab's MCP panel."
        )

    async def _routed(self, username: str, uri: object, what: str) -> tuple[Server, str]:
        if not isinstance(uri, str) or (parts := split_uri(uri)) is None:
            raise ValidationFailed(
                f"{str(uri)[:200]!r} is not a gateway resource URI (dodo://<server>/<uri>); "
                "use a URI from resources/list.",
                fields={"uri": "dodo://<server>/<uri> required"},
            )
        alias, original = parts
        return await self._server(username, alias, what), original

    # -- resources ------------------------------------------------------------------------

    async def list_resources(self, username: str) -> list[types.Resource]:
        """Every resource of the user's servers, under gateway URIs."""
        found = await self._list(username, "resources", "resources/list", "resources")
        return _with_gateway_uris(found, "uri", types.Resource)

    async def list_resource_templates(self, username: str) -> list[types.ResourceTemplate]:
        """Every resource template of the user's servers, under gateway URIs."""
        found = await self._list(
            username, "resources", "resources/templates/list", "resourceTemplates"
        )
        return _with_gateway_uris(found, "uriTemplate", types.ResourceTemplate)

    async def read_resource(self, username: str, uri: object) -> types.ReadResourceResult:
        """Read a resource by its gateway URI; the contents' URIs are gateway URIs."""
        server, original = await self._routed(username, uri, "this resource")
        result = await server.session.request("resources/read", _params(uri=original))
        contents = result.get("contents")
        if isinstance(contents, list):
            result["contents"] = [
                {**item, "uri": gateway_uri(server.alias, item["uri"])}
                if isinstance(item, dict) and isinstance(item.get("uri"), str)
                else item
                for item in contents
            ]
        return types.ReadResourceResult.model_validate(result)

    async def subscribe(self, username: str, uri: object, on: bool) -> tuple[str, str]:
        """Subscribe to (or unsubscribe from) a resource's updates at its server;
        ``(connection id, original URI)`` for telling the subscriber."""
        server, original = await self._routed(username, uri, "this resource")
        method = "resources/subscribe" if on else "resources/unsubscribe"
        await server.session.request(method, _params(uri=original))
        kept = self._kept.setdefault(server.row.id, _Kept(username, {}))
        if on:
            kept.subscribed[str(uri)] = original
        else:
            kept.subscribed.pop(str(uri), None)
        return server.row.id, original

    # -- prompts --------------------------------------------------------------------------

    async def list_prompts(self, username: str) -> list[types.Prompt]:
        """Every prompt of the user's servers, named ``<server>__<prompt>``."""
        found = await self._list(username, "prompts", "prompts/list", "prompts")
        named = [(server, item) for server, item in found if isinstance(item.get("name"), str)]
        names = aggregate_names((server.alias, item["name"]) for server, item in named)
        routes: dict[str, _PromptRoute] = {}
        prompts = []
        for server, item in named:
            name = names[(server.alias, item["name"])]
            routes[name] = _PromptRoute(server.row.id, server.alias, item["name"])
            mapped = {
                **item,
                "name": name,
                "_meta": origin_meta(item.get("_meta"), server.alias, item["name"], "name"),
            }
            prompts.append(_valid(types.Prompt, mapped, server.alias))
        self._prompts[username] = routes
        return sorted((p for p in prompts if p is not None), key=lambda prompt: prompt.name)

    async def _prompt(self, username: str, name: object) -> tuple[Server, str]:
        if not isinstance(name, str):
            raise ValidationFailed("'name' must be a prompt name.", fields={"name": "required"})
        route = self._prompts.get(username, {}).get(name)
        if route is None:
            await self.list_prompts(username)
            route = self._prompts.get(username, {}).get(name)
        if route is None:
            raise NotFound(
                f"No prompt named {name[:200]!r}: list the prompts again, or connect its "
                "server in JupyterLab's MCP panel."
            )
        server = await self._server(username, route.alias, "this prompt")
        return server, route.original

    async def get_prompt(
        self, username: str, name: object, arguments: dict[str, str] | None = None
    ) -> types.GetPromptResult:
        """A prompt's messages, by its gateway name."""
        server, original = await self._prompt(username, name)
        params = _params(name=original)
        if arguments:
            params["arguments"] = arguments
        return types.GetPromptResult.model_validate(
            await server.session.request("prompts/get", params)
        )

    # -- completion and logging -------------------------------------------------------------

    async def complete(
        self, username: str, params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        """Complete a prompt's or a resource template's argument at the server that owns
        it."""
        sent = {
            **params.model_dump(by_alias=True, mode="json", exclude_none=True),
            **_params(),
        }
        ref = params.ref
        if isinstance(ref, types.PromptReference):
            server, original = await self._prompt(username, ref.name)
            sent["ref"] = {**sent["ref"], "name": original}
        else:
            server, original = await self._routed(username, ref.uri, "this resource template")
            sent["ref"] = {**sent["ref"], "uri": original}
        if not await server.session.offers("completions"):
            return types.CompleteResult(completion=types.Completion(values=[]))
        return types.CompleteResult.model_validate(
            await server.session.request("completion/complete", sent)
        )

    async def set_level(self, username: str, level: str) -> None:
        """Send ``logging/setLevel`` to every server of the user that logs."""

        async def send(server: Server) -> None:
            try:
                await asyncio.wait_for(
                    server.session.request("logging/setLevel", _params(level=level)),
                    self._service.server_timeout,
                )
            except Exception as e:
                log.info("dodo: %s did not take log level %r: %s", server.alias, level, e)

        servers = await self._offering(username, "logging")
        await asyncio.gather(*(send(server) for server in servers))
        # Only now: a session that the sending opened must not be asked twice.
        self._levels[username] = level

    # -- a session opened anew ------------------------------------------------------------

    async def restore(self, username: str, connection_id: str, session: UpstreamSession) -> None:
        """Ask a connection's newly opened session for what the server was asked to keep:
        the log level the user set, and the subscriptions (``on_open`` of the shared
        session, so it runs each time the session opens)."""
        level = self._levels.get(username)
        if level is not None and "logging" in session.server_capabilities:
            await session.request_once("logging/setLevel", _params(level=level))
        kept = self._kept.get(connection_id)
        for uri in sorted(kept.subscribed.values() if kept else ()):
            await session.request_once("resources/subscribe", _params(uri=uri))

    def keeps(self, connection_id: str) -> bool:
        """Whether the connection's server holds subscriptions (its session must stay)."""
        kept = self._kept.get(connection_id)
        return kept is not None and bool(kept.subscribed)

    def reopen(self, connection_id: str) -> None:
        """After a connection's session was replaced (a new sign-in, new headers, a
        refresh): open the new one at once when it has subscriptions, so that their
        updates keep coming without waiting for a request; forget them when the
        connection is gone."""
        kept = self._kept.get(connection_id)
        if kept is None or not kept.subscribed:
            return

        async def reopen() -> None:
            for server in await self._service.servers(kept.username):
                if server.row.id == connection_id:
                    await server.session.offers("resources")  # opens it: restore() runs
                    return
            self._kept.pop(connection_id, None)

        async def logged() -> None:
            try:
                await asyncio.wait_for(reopen(), self._service.server_timeout)
            except Exception as e:
                log.info("dodo: %s not reopened for its subscriptions: %s", connection_id, e)

        self._in_background(logged(), f"dodo-reopen-{connection_id}")

    def release(self, username: str, uris: set[str]) -> None:
        """Unsubscribe, at their servers, from resources no client session of the user
        wants any more (its last subscriber ended without unsubscribing)."""
        for kept in self._kept.values():
            if kept.username == username:
                for uri in uris:
                    kept.subscribed.pop(uri, None)  # whatever the servers answer

        async def unsubscribe() -> None:
            for uri in sorted(uris):
                try:
                    await asyncio.wait_for(
                        self.subscribe(username, uri, False), self._service.server_timeout
                    )
                except Exception as e:
                    log.info("dodo: not unsubscribed from %s: %s", uri[:200], e)

        self._in_background(unsubscribe(), "dodo-unsubscribe")

    def _in_background(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _params(**values: Any) -> dict[str, Any]:
    """A request's params, with the ``_meta`` that carries the hop count on (loops)."""
    return {**values, "_meta": outbound_meta()}


def _with_gateway_uris(
    found: list[tuple[Server, dict[str, Any]]], key: str, model: type[Any]
) -> list[Any]:
    """The listed items as ``model``, their ``key`` (``uri``, ``uriTemplate``) a gateway
    URI and their origin in ``_meta``."""
    items = []
    for server, item in found:
        uri = item.get(key)
        if not isinstance(uri, str):
            continue
        mapped = {
            **item,
            key: gateway_uri(server.alias, uri),
            "_meta": origin_meta(item.get("_meta"), server.alias, uri, key),
        }
        valid = _valid(model, mapped, server.alias)
        if valid is not None:
            items.append(valid)
    return items


def _valid(model: type[Any], item: dict[str, Any], alias: str) -> Any:
    """``item`` as ``model``; None (and a log line) when the server sent a bad one."""
    try:
        return model.model_validate(item)
    except ValueError:
        log.info("dodo: %s listed a malformed %s; it is left out", alias, model.__name__)
        return None
