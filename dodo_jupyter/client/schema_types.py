"""JSON Schema → Python types and numpy-style parameter docs, for tool functions.

Annotations (real ``typing`` objects, shown by ``inspect.signature``):

==========================  ===================================================
JSON Schema                 annotation
==========================  ===================================================
``string`` / ``integer``    ``str`` / ``int``
``number`` / ``boolean``    ``float`` / ``bool``
``null``                    ``None``
``enum`` / ``const``        ``Literal[...]`` of the values
``array``                   ``list[<items>]`` (``list[Any]`` without ``items``)
``object``                  ``dict[str, Any]``: nested objects are plain dicts,
                            their fields are listed in the docstring instead
``anyOf`` / ``oneOf`` /     the union (``str | None``)
a list of types
``$ref`` to ``$defs``       what it refers to (pydantic puts models there)
anything else               ``Any``
==========================  ===================================================
"""

from __future__ import annotations

import functools
import inspect
import operator
import types
import typing
from typing import Any, Literal

__all__ = [
    "Schema",
    "annotation_of",
    "describe_parameter",
    "format_annotation",
    "format_signature",
    "result_schema",
]

_SCALARS: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "null": None,
}
#: How deep nested objects' fields are listed in a docstring.
FIELD_DEPTH = 3
#: How deep a schema is read (refs followed, types built): recursive schemas end here.
MAX_NESTING = 6


class Schema:
    """One JSON Schema node with the ``$defs`` of the document it came from."""

    def __init__(self, node: Any, defs: dict[str, Any] | None = None, depth: int = 0) -> None:
        self.defs = defs or {}
        self.depth = depth
        self.node: dict[str, Any] = self._resolved(node if isinstance(node, dict) else {})

    @classmethod
    def document(cls, node: Any) -> Schema:
        """A whole schema (its own ``$defs`` / ``definitions`` are used for refs)."""
        node = node if isinstance(node, dict) else {}
        defs = {**(node.get("definitions") or {}), **(node.get("$defs") or {})}
        return cls(node, defs)

    def _resolved(self, node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        for _ in range(MAX_NESTING):
            if not isinstance(ref, str):
                break
            target = self.defs.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/") else None
            if not isinstance(target, dict):
                break
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            ref = target.get("$ref")
        return node

    def child(self, node: Any) -> Schema:
        return Schema(node, self.defs, self.depth + 1)

    @property
    def properties(self) -> dict[str, Schema]:
        props = self.node.get("properties")
        if not isinstance(props, dict):
            return {}
        return {str(name): self.child(value) for name, value in props.items()}

    @property
    def required(self) -> list[str]:
        required = self.node.get("required")
        return [str(name) for name in required] if isinstance(required, list) else []

    @property
    def description(self) -> str:
        text = self.node.get("description")
        return " ".join(text.split()) if isinstance(text, str) else ""

    @property
    def enum(self) -> list[Any] | None:
        values = self.node.get("enum")
        if isinstance(values, list) and values:
            return values
        return [self.node["const"]] if "const" in self.node else None

    @property
    def members(self) -> list[Schema]:
        """The alternatives of an ``anyOf`` / ``oneOf`` (or a list of types)."""
        for key in ("anyOf", "oneOf"):
            if isinstance(self.node.get(key), list):
                return [self.child(member) for member in self.node[key]]
        kinds = self.node.get("type")
        if isinstance(kinds, list):
            return [self.child({**self.node, "type": kind}) for kind in kinds]
        return []

    @property
    def items(self) -> Schema | None:
        items = self.node.get("items")
        return self.child(items) if isinstance(items, dict) else None

    def allows_null(self) -> bool:
        if self.depth > MAX_NESTING:
            return False
        if self.node.get("type") == "null" or (self.enum is not None and None in self.enum):
            return True
        return any(member.allows_null() for member in self.members)


def _union(members: list[Any]) -> Any:
    unique: list[Any] = []
    for member in members:
        if member is Any:
            return Any
        if member not in unique:
            unique.append(member)
    # None last, as people write it: ``str | None``.
    unique.sort(key=lambda m: m is None)
    if len(unique) == 1:
        return unique[0]
    try:
        return functools.reduce(operator.or_, [type(None) if m is None else m for m in unique])
    except TypeError:
        return typing.Union[tuple(unique)]  # noqa: UP007 - members `|` cannot join


def annotation_of(schema: Schema) -> Any:
    """The Python annotation of a schema node (see the module docstring)."""
    if schema.depth > MAX_NESTING:
        return Any
    enum = schema.enum
    if enum is not None:
        literals = [v for v in enum if isinstance(v, str | int | bool) or v is None]
        return Literal[tuple(literals)] if len(literals) == len(enum) else Any
    members = schema.members
    if members:
        return _union([annotation_of(member) for member in members])
    kind = schema.node.get("type")
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind == "array" or (kind is None and "items" in schema.node):
        items = schema.items
        return list[annotation_of(items)] if items is not None else list[Any]  # type: ignore[misc]
    if kind == "object" or (kind is None and "properties" in schema.node):
        return dict[str, Any]
    return Any


def format_annotation(annotation: Any) -> str:
    """An annotation as Python source, the same on every Python version:
    ``Literal['a'] | None``, ``dict[str, Any]`` (not 3.11's ``Optional[Literal['a']]``
    and ``dict[str, typing.Any]``)."""
    if annotation is None or annotation is type(None):
        return "None"
    if annotation is Any:
        return "Any"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return f"Literal[{', '.join(repr(value) for value in args)}]"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(format_annotation(arg) for arg in args)
    if origin is not None and args:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(format_annotation(arg) for arg in args)}]"
    if isinstance(annotation, type):
        return annotation.__name__
    return inspect.formatannotation(annotation).replace("typing.", "")


def format_signature(signature: inspect.Signature) -> str:
    """``(*, a: int, b: int = 0) -> int``: the signature as ``inspect`` writes it, with
    annotations as :func:`format_annotation` writes them."""
    parts: list[str] = []
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and "*" not in parts:
            parts.append("*")
        text = ("**" if parameter.kind is inspect.Parameter.VAR_KEYWORD else "") + parameter.name
        if parameter.annotation is not inspect.Parameter.empty:
            text += f": {format_annotation(parameter.annotation)}"
        if parameter.default is not inspect.Parameter.empty:
            text += f" = {parameter.default!r}"
        parts.append(text)
    returns = signature.return_annotation
    arrow = "" if returns is inspect.Signature.empty else f" -> {format_annotation(returns)}"
    return f"({', '.join(parts)}){arrow}"


def result_schema(output_schema: dict[str, Any] | None) -> tuple[Schema, bool]:
    """The schema of a tool's result and whether the tool wraps it: the MCP SDK gives a
    function returning a non-object ``{"result": <value>}`` as structured content, with
    an output schema of that one required property."""
    document = Schema.document(output_schema or {})
    props = document.properties
    if list(props) == ["result"] and document.required == ["result"]:
        return props["result"], True
    return document, False


def describe_parameter(
    name: str, schema: Schema, *, required: bool, annotation: Any, indent: str = ""
) -> list[str]:
    """The numpy-style lines of one parameter (or nested field): ``name : type``, its
    default, its description, its allowed values and, for an object (or a list of
    objects), its fields, indented."""
    head = f"{indent}{name} : {format_annotation(annotation)}"
    if "default" in schema.node:
        head += f", default {schema.node['default']!r}"
    elif not required:
        head += ", optional"
    lines = [head]
    body = indent + "    "
    if schema.description:
        lines.append(body + schema.description)
    enum = schema.enum
    if enum is not None and len(enum) > 1:
        lines.append(body + "One of: " + ", ".join(repr(v) for v in enum) + ".")
    lines.extend(_fields(schema, body))
    return lines


def _fields(schema: Schema, body: str) -> list[str]:
    if schema.depth >= FIELD_DEPTH:
        return []
    target, label = schema, "Fields:"
    if not schema.properties and schema.items is not None and schema.items.properties:
        target, label = schema.items, "Fields of each item:"
    if not target.properties:
        for member in schema.members:
            lines = _fields(member, body)
            if lines:
                return lines
        return []
    required = set(target.required)
    lines = [body + label]
    for field, sub in target.properties.items():
        lines.extend(
            describe_parameter(
                field,
                sub,
                required=field in required,
                annotation=annotation_of(sub),
                indent=body + "    ",
            )
        )
    return lines
