"""The user's tools as typed Python functions, generated from their JSON Schemas.

One generator serves every place a tool becomes Python: ``from dodo_jupyter import
tools`` in a kernel (:class:`ToolNamespace` per server), ``DodoClient.functions()``, and
the text the code-mode ``search_tools`` tool shows a model (:func:`shape_of`, used by
:mod:`.search`), so a model reads exactly the names and signatures the kernel offers.

A tool function (``tools.demo.add``):

* takes **keyword-only** arguments named by :mod:`.python_names`, typed by
  :mod:`.schema_types`, the required ones first and without a default, the others with
  the schema's ``default`` or ``None`` (``None`` on a parameter whose schema does not
  allow ``null`` means "not given": it is left out). A tool whose input schema lists no
  ``properties`` at all takes any ``**arguments``;
* has a numpy-style docstring: the tool's description, its parameters (type, default,
  description, allowed values, the fields of nested objects) and its result type;
* returns :attr:`ToolResult.value <dodo_jupyter.client.results.ToolResult.value>`: the
  structured content when the tool gives one (the MCP SDK's ``{"result": x}`` wrapping of
  a non-object result unwrapped to ``x``, as its output schema says), else the text,
  parsed when it is JSON; a result with images is the :class:`ToolResult` itself, which
  shows them as images in Jupyter;
* raises :class:`~dodo_jupyter.client.errors.ToolError` (the upstream message) when the
  tool answers ``isError``, and :class:`TypeError` showing the signature for arguments
  it does not take;
* has ``.aio``, the same call as a coroutine function for async code
  (``await tools.demo.add.aio(a=1, b=2)``), and keeps where it came from:
  ``.gateway_name`` (``demo__add``), ``.python_path`` (``tools.demo.add``),
  ``.parameter_names`` (Python name → schema name) and ``.tool``.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from .python_names import ROOT, python_names, tool_paths
from .results import Tool, ToolResult
from .schema_types import (
    Schema,
    annotation_of,
    describe_parameter,
    format_annotation,
    format_signature,
    result_schema,
)

__all__ = [
    "CallsTools",
    "ToolFunction",
    "ToolNamespace",
    "ToolShape",
    "build_namespaces",
    "close_matches",
    "shape_of",
    "tool_function",
    "tool_functions",
]


class CallsToolsAsync(Protocol):
    """What ``.aio`` needs (``AsyncDodoClient`` is one)."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], *, structured_only: bool = False
    ) -> ToolResult: ...


class CallsTools(Protocol):
    """What a tool function needs of a client (``DodoClient`` is one)."""

    def call_tool(
        self, name: str, arguments: dict[str, Any], *, structured_only: bool = False
    ) -> ToolResult: ...

    @property
    def aio(self) -> CallsToolsAsync: ...


class ToolFunction(Protocol):
    """A generated tool function (see the module docstring)."""

    __signature__: inspect.Signature
    gateway_name: str
    python_path: str
    parameter_names: dict[str, str]
    tool: Tool
    aio: Callable[..., Awaitable[Any]]

    def __call__(self, **arguments: Any) -> Any: ...


@dataclass(frozen=True)
class ToolShape:
    """A tool as Python sees it: its names, signature and docstring."""

    tool: Tool
    server: str
    name: str
    signature: inspect.Signature
    #: Python parameter name → the schema's property name.
    parameter_names: dict[str, str]
    #: Parameters whose ``None`` means "not given" (left out of the call).
    none_is_unset: frozenset[str]
    doc: str
    #: The result is the MCP SDK's ``{"result": x}``: ``x`` is returned.
    unwrap: bool

    @property
    def python_path(self) -> str:
        return f"{ROOT}.{self.server}.{self.name}"

    @property
    def summary(self) -> str:
        """The first line of the tool's description ("" when it has none)."""
        description = inspect.cleandoc(self.tool.description or "")
        return description.splitlines()[0].strip() if description else ""

    @property
    def definition(self) -> str:
        """``def add(*, a: float, b: float = 0) -> float``."""
        return f"def {self.name}{format_signature(self.signature)}"

    def arguments(self, positional: tuple[Any, ...], given: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments under their schema names; :class:`TypeError` with the
        signature for arguments the tool does not take."""
        if positional:
            raise TypeError(f"{self.python_path}() takes keyword arguments only: {self._it}")
        try:
            bound = self.signature.bind(**given)
        except TypeError as e:
            raise TypeError(f"{self.python_path}(): {e}. It is {self._it}") from None
        sent: dict[str, Any] = {}
        for key, value in bound.arguments.items():
            if key in self.parameter_names:
                if value is None and key in self.none_is_unset:
                    continue
                sent[self.parameter_names[key]] = value
            else:  # **arguments of a tool without listed properties
                sent.update(value)
        return sent

    @property
    def _it(self) -> str:
        """``tools.server.add(*, a: float, b: float = 0) -> float``, for error messages."""
        return f"{self.python_path}{format_signature(self.signature)}"

    def value(self, result: ToolResult) -> Any:
        value = result.value
        if self.unwrap and isinstance(value, dict) and set(value) == {"result"}:
            return value["result"]
        return value


def shape_of(tool: Tool, path: tuple[str, str] | None = None) -> ToolShape:
    """How ``tool`` looks in Python; ``path`` is its ``(server, tool)`` attribute names
    in the listing (:func:`~.python_names.tool_paths`), found from its name alone when
    not given."""
    server, name = path or tool_paths([tool.name])[tool.name]
    document = Schema.document(tool.input_schema)
    properties = document.properties
    required = list(dict.fromkeys(document.required))
    order = [*required, *(n for n in properties if n not in required)]
    python = python_names(order)
    parameters: list[inspect.Parameter] = []
    none_is_unset: set[str] = set()
    docs: list[str] = []
    for schema_name in order:
        schema = properties.get(schema_name) or document.child({})
        annotation = annotation_of(schema)
        is_required = schema_name in required
        default: Any = inspect.Parameter.empty
        if not is_required:
            default = schema.node.get("default")
            if "default" not in schema.node and not schema.allows_null():
                none_is_unset.add(python[schema_name])
                annotation = annotation if annotation is Any else annotation | None
        parameters.append(
            inspect.Parameter(
                python[schema_name],
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=annotation,
            )
        )
        docs.extend(
            describe_parameter(
                python[schema_name], schema, required=is_required, annotation=annotation
            )
        )
    if "properties" not in document.node:
        parameters.append(
            inspect.Parameter("arguments", inspect.Parameter.VAR_KEYWORD, annotation=Any)
        )
    returned, unwrap = result_schema(tool.output_schema)
    returns = annotation_of(returned) if returned.node else Any
    signature = inspect.Signature(parameters, return_annotation=returns)
    shape_doc = _docstring(tool, f"{ROOT}.{server}.{name}", docs, returns, returned)
    return ToolShape(
        tool=tool,
        server=server,
        name=name,
        signature=signature,
        parameter_names={python[n]: n for n in order},
        none_is_unset=frozenset(none_is_unset),
        doc=shape_doc,
        unwrap=unwrap,
    )


def _docstring(tool: Tool, path: str, params: list[str], returns: Any, result: Schema) -> str:
    lines = [inspect.cleandoc(tool.description or "") or f"The MCP tool {tool.name}.", ""]
    if params:
        lines += ["Parameters", "----------", *params, ""]
    if returns is not Any:
        lines += ["Returns", "-------", format_annotation(returns)]
        if result.description:
            lines.append(f"    {result.description}")
        lines.append("")
    lines.append(f"Gateway tool {tool.name}; in async code: await {path}.aio(...).")
    return "\n".join(lines)


def tool_function(
    client: CallsTools, tool: Tool, *, path: tuple[str, str] | None = None
) -> ToolFunction:
    """The function of one tool (see the module docstring), calling through ``client``."""
    shape = shape_of(tool, path)

    # The function returns the result's value, which is its structured content when it
    # has some: the text repeating it need not come (dodo_jupyter.tool_results).
    def call(*args: Any, **arguments: Any) -> Any:
        sent = shape.arguments(args, arguments)
        return shape.value(client.call_tool(tool.name, sent, structured_only=True))

    async def aio(*args: Any, **arguments: Any) -> Any:
        sent = shape.arguments(args, arguments)
        return shape.value(await client.aio.call_tool(tool.name, sent, structured_only=True))

    for function, name in ((call, shape.name), (aio, "aio")):
        function.__name__ = name
        function.__qualname__ = shape.python_path + (".aio" if function is aio else "")
        function.__doc__ = shape.doc
        function.__signature__ = shape.signature  # type: ignore[union-attr]
    made = cast(ToolFunction, call)
    made.aio = aio
    made.gateway_name = tool.name
    made.python_path = shape.python_path
    made.parameter_names = dict(shape.parameter_names)
    made.tool = tool
    return made


def tool_functions(client: CallsTools, tools: Sequence[Tool]) -> dict[str, ToolFunction]:
    """One function per tool, by gateway name (names told apart across the listing)."""
    paths = tool_paths(tool.name for tool in tools)
    return {tool.name: tool_function(client, tool, path=paths[tool.name]) for tool in tools}


def close_matches(name: str, names: Sequence[str]) -> str:
    """``did you mean 'add'? `` for a mistyped name ("" when nothing is close)."""
    found = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    return f"did you mean {' or '.join(repr(n) for n in found)}? " if found else ""


class ToolNamespace:
    """One server's tools: ``tools.<server>.<tool>(...)``. ``dir()`` (and so Tab
    completion) lists them; an unknown name raises :class:`AttributeError` listing them."""

    def __init__(self, path: str, functions: dict[str, ToolFunction]) -> None:
        self.__dict__.update(functions)
        self.__dict__["_path"] = path
        self.__dict__["_names"] = sorted(functions)

    def __dir__(self) -> list[str]:
        return list(self._names)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(
            f"{self._path} has no tool {name!r}: {close_matches(name, self._names)}"
            f"it has {', '.join(self._names) or 'none'}. A tool switched off in the MCP "
            f"panel is not offered; {ROOT}.refresh() reads the list again."
        )

    def __repr__(self) -> str:
        return f"<{self._path}: {', '.join(self._names)}>"


def build_namespaces(client: CallsTools, tools: Sequence[Tool]) -> dict[str, ToolNamespace]:
    """The servers of a listing by Python name, each with its tool functions."""
    functions = tool_functions(client, tools)
    servers: dict[str, dict[str, ToolFunction]] = {}
    for function in functions.values():
        _, server, name = function.python_path.split(".")
        servers.setdefault(server, {})[name] = function
    return {server: ToolNamespace(f"{ROOT}.{server}", named) for server, named in servers.items()}
