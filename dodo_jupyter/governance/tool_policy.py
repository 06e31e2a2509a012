"""What agents may do with one MCP server's tools: the ``tool_policy`` of a catalog entry
(set by an administrator) or of a server a user added outside the catalog.

* ``allow`` / ``deny``: tool-name globs (``fnmatch``, case-sensitive) matched against the
  server's own tool names; an empty ``allow`` allows every tool; ``deny`` wins.
* ``read_only``: only tools whose annotations say ``readOnlyHint: true`` are offered
  (missing annotations count as not read-only).
* ``approval``: ``never``, ``destructive`` (tools that are not read-only and whose
  ``destructiveHint`` is true or missing, the MCP default) or ``always``.
* ``calls_per_minute``: a per-user rate limit for the server.
* ``review_new_tools``: tools the server starts offering after its first listing wait
  for the user's acceptance (see :mod:`.pins`).

The empty policy (:data:`OPEN`) allows everything and asks nobody.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..exceptions import ValidationFailed

if TYPE_CHECKING:  # the catalog (and the hub catalog service) import this without MCP
    import mcp_types as types

__all__ = [
    "IMPORTED",
    "OPEN",
    "Approval",
    "ToolPolicy",
    "describe_field_error",
    "field_errors",
    "is_destructive",
    "is_read_only",
    "parse_policy",
    "policy_from",
    "policy_json",
]

Approval = Literal["never", "destructive", "always"]
_GLOB = re.compile(r"^[A-Za-z0-9_.*?\[\]!/-]{1,128}$")


def is_read_only(tool: types.Tool) -> bool:
    """Whether the tool says it changes nothing (``readOnlyHint: true``)."""
    return bool(tool.annotations is not None and tool.annotations.read_only_hint)


def is_destructive(tool: types.Tool) -> bool:
    """Whether a call may destroy something: not read-only, and ``destructiveHint`` true
    or missing (the MCP default)."""
    if is_read_only(tool):
        return False
    hint = tool.annotations.destructive_hint if tool.annotations is not None else None
    return hint is not False


class ToolPolicy(BaseModel):
    """A server's tool policy (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    allow: tuple[str, ...] = Field(default=(), max_length=100)
    deny: tuple[str, ...] = Field(default=(), max_length=100)
    read_only: bool = False
    approval: Approval = "never"
    calls_per_minute: int | None = Field(default=None, ge=1, le=100_000)
    review_new_tools: bool = False

    @field_validator("allow", "deny", mode="before")
    @classmethod
    def _globs(cls, v: object) -> object:
        if isinstance(v, list):
            v = tuple(v)
        if isinstance(v, tuple):
            for glob in v:
                if not isinstance(glob, str) or not _GLOB.match(glob):
                    raise ValueError(
                        f"{str(glob)[:40]!r} is not a tool-name glob (letters, digits, "
                        "'_.-/' and the wildcards '*?[]!', at most 128 characters)"
                    )
        return v

    @property
    def is_open(self) -> bool:
        """Whether this policy refuses nothing and asks nobody."""
        return self == OPEN

    def refusal(self, tool: types.Tool) -> str | None:
        """Why agents may not use ``tool`` under this policy, or None."""
        name = tool.name
        denied = next((g for g in self.deny if fnmatch.fnmatchcase(name, g)), None)
        if denied is not None:
            return f"the tool policy denies it (deny: {denied!r})"
        if self.allow and not any(fnmatch.fnmatchcase(name, g) for g in self.allow):
            return "the tool policy does not allow it (it is not in 'allow')"
        if self.read_only and not is_read_only(tool):
            return "the tool policy offers only read-only tools, and it is not marked read-only"
        return None

    def needs_approval(self, tool: types.Tool) -> bool:
        """Whether a call of ``tool`` waits for the user's approval."""
        if self.approval == "always":
            return True
        return self.approval == "destructive" and is_destructive(tool)

    def to_json(self) -> dict[str, object]:
        """The policy as stored and shown (every field)."""
        return {
            "allow": list(self.allow),
            "deny": list(self.deny),
            "read_only": self.read_only,
            "approval": self.approval,
            "calls_per_minute": self.calls_per_minute,
            "review_new_tools": self.review_new_tools,
        }


#: The empty policy: every tool, no approval, no limit.
OPEN = ToolPolicy()
#: The policy of an entry imported from an MCP Registry ``server.json``: a server nobody
#: here has vetted asks before destructive calls and before new tools.
IMPORTED = ToolPolicy(approval="destructive", review_new_tools=True)


def parse_policy(data: object, field: str = "tool_policy") -> ToolPolicy:
    """Validate untrusted input as a tool policy.

    Raises
    ------
    ValidationFailed
        naming each bad field (``tool_policy.deny``, ...).
    """
    if not isinstance(data, dict):
        raise ValidationFailed(f"'{field}' must be a JSON object.", fields={field: "object"})
    try:
        return ToolPolicy.model_validate(data)
    except ValidationError as e:
        fields = {f"{field}.{loc}": message for loc, message in field_errors(e).items()}
        summary = "; ".join(f"{k}: {v}" for k, v in fields.items())
        raise ValidationFailed(f"Invalid tool policy: {summary}", fields=fields) from None


def field_errors(error: ValidationError) -> dict[str, str]:
    """One message per bad field of a pydantic ``error`` (dotted locations, the first
    message of each), worded for a person: no pydantic prefixes, unknown fields named."""
    fields: dict[str, str] = {}
    for item in error.errors(include_url=False):
        loc = ".".join(str(p) for p in item["loc"]) or "entry"
        fields.setdefault(loc, describe_field_error(item["type"], item["msg"]))
    return fields


#: pydantic's wording of a value it refuses, as this API words it.
_EXPECTED = {
    "missing": "required",
    "extra_forbidden": "unknown field",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
}


#: pydantic's openings of "what was expected" messages.
_PREFIXES = ("Input should be ", "Input should have ", "String should have ", "List should have ")


def describe_field_error(kind: str, message: str) -> str:
    """A short, person-facing reason for one pydantic error of type ``kind``: what the
    field expects, without pydantic's phrasing ("Input should be …", "Value error, ")."""
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    for prefix in _PREFIXES:
        if message.startswith(prefix):
            verb = "be " if prefix == "Input should be " else "have "
            return "must " + verb + message.removeprefix(prefix)
    if message.startswith("String should match pattern"):
        return "has a character or form that is not allowed"
    return message


def policy_from(stored: Mapping[str, Any] | None) -> ToolPolicy:
    """The policy of a stored ``tool_policy`` column (None: the open policy)."""
    return OPEN if not stored else ToolPolicy.model_validate(dict(stored))


def policy_json(stored: Mapping[str, Any] | None) -> dict[str, object]:
    """A stored ``tool_policy`` with every field, as the APIs show it."""
    return policy_from(stored).to_json()
