"""The catalog entry: what an administrator approves, and how it is validated.

An entry describes one remote MCP server: where it is (``url``, ``transport``), how users
authenticate to it (``auth_type`` with either ``headers`` for static headers or an
``oauth`` policy), what agents may do with its tools (``tool_policy``, see
:mod:`dodo_jupyter.governance.tool_policy`), and what users are told about it. Input is
parsed strictly (unknown fields are refused so typos do not pass silently) and every
problem is reported per field in one :class:`~dodo_jupyter.exceptions.ValidationFailed`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..exceptions import ValidationFailed
from ..governance.tool_policy import OPEN, ToolPolicy, field_errors
from ..net.hosts import parse_host_rule
from ..net.urls import check_server_url

__all__ = [
    "ID_PATTERN",
    "EntryInput",
    "HeaderSpec",
    "OAuthPolicy",
    "check_header_values",
    "parse_entry",
    "row_values",
    "stored_values",
]

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
#: RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,200}\Z")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
#: The longest header value a user may store.
MAX_HEADER_VALUE = 8192


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


class HeaderSpec(_Strict):
    """A header a user supplies for a ``static_headers`` server (e.g. an API key)."""

    name: str
    description: str = Field(default="", max_length=300)
    is_secret: bool = True

    @field_validator("name")
    @classmethod
    def _header_name(cls, v: str) -> str:
        if not _HEADER_NAME.match(v):
            raise ValueError("must be an HTTP header name such as 'X-API-Key'")
        return v


class OAuthPolicy(_Strict):
    """How dodo authenticates to an ``oauth`` server.

    ``client_id`` (with the secret read from the environment variable
    ``client_secret_env``) is a pre-registered client, for servers without dynamic
    registration. ``resource`` overrides the RFC 8707 resource indicator;
    ``send_resource: false`` leaves it out (for authorization servers that reject it).
    """

    client_id: str | None = Field(default=None, max_length=300)
    client_secret_env: str | None = None
    scopes: list[str] = Field(default_factory=list, max_length=50)
    resource: str | None = Field(default=None, max_length=2048)
    send_resource: bool = True

    @field_validator("client_secret_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError("must be an environment variable name such as 'GITHUB_MCP_SECRET'")
        return v

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, v: list[str]) -> list[str]:
        for scope in v:
            if not _SCOPE_TOKEN.match(scope):
                raise ValueError(
                    f"scope {scope[:200]!r} must be 1-200 printable ASCII characters without "
                    "space, '\"' or '\\' (RFC 6749 §3.3)"
                )
        return v

    @model_validator(mode="after")
    def _secret_needs_client(self) -> OAuthPolicy:
        if self.client_secret_env and not self.client_id:
            raise ValueError("client_secret_env needs client_id")
        return self


class EntryInput(_Strict):
    """The fields an administrator sets on a catalog entry."""

    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(default="", max_length=200)
    display_name: str = Field(default="", max_length=100)
    description: str = Field(default="", max_length=100)
    url: str = Field(max_length=2048)
    transport: Literal["streamable-http", "sse"] = "streamable-http"
    auth_type: Literal["oauth", "static_headers", "none"] = "oauth"
    known_hosts: list[str] = Field(default_factory=list, max_length=20)
    setup_guide: str = Field(default="", max_length=4000)
    headers: list[HeaderSpec] = Field(default_factory=list, max_length=20)
    oauth: OAuthPolicy | None = None
    enabled: bool = True
    #: What agents may do with the server's tools (the open policy unless set).
    tool_policy: ToolPolicy = OPEN

    @field_validator("known_hosts")
    @classmethod
    def _hosts(cls, v: list[str]) -> list[str]:
        # The outbound guard's own rule syntax (dodo_jupyter.net.hosts), stored canonical,
        # so what is accepted here is exactly what the guard will match.
        hosts: list[str] = []
        for host in v:
            try:
                hosts.append(parse_host_rule(host))
            except ValidationFailed as e:
                raise ValueError(
                    f"{host!r}: {e.details['fields']['allowed_hosts']}; write a host name "
                    "('auth.example.com'), a wildcard ('*.example.com') or 'host:port'"
                ) from None
        return list(dict.fromkeys(hosts))

    @model_validator(mode="after")
    def _consistent(self) -> EntryInput:
        if not self.name:
            self.name = self.id
        if not self.display_name:
            self.display_name = self.name[:100]
        if self.auth_type == "static_headers" and not self.headers:
            raise ValueError("static_headers entries need at least one header in 'headers'")
        if self.auth_type != "static_headers" and self.headers:
            raise ValueError("'headers' is only for auth_type 'static_headers'")
        if self.auth_type != "oauth" and self.oauth is not None:
            raise ValueError("'oauth' is only for auth_type 'oauth'")
        names = [h.name.lower() for h in self.headers]
        if len(set(names)) != len(names):
            raise ValueError("header names must be unique")
        return self


def _field_errors(error: ValidationError) -> dict[str, str]:
    fields = field_errors(error)
    if "id" in fields and any(
        i["type"] == "string_pattern_mismatch" and i["loc"] == ("id",) for i in error.errors()
    ):
        fields["id"] = "use 1-32 lowercase letters, digits or '-', starting with a letter or digit"
    return fields


def parse_entry(data: object, *, allow_insecure_loopback: bool) -> EntryInput:
    """Validate untrusted input as a catalog entry.

    Raises
    ------
    ValidationFailed
        with one message per bad field.
    """
    if not isinstance(data, dict):
        raise ValidationFailed("A catalog entry must be a JSON object.")
    try:
        entry = EntryInput.model_validate(data)
    except ValidationError as e:
        fields = _field_errors(e)
        summary = "; ".join(f"{k}: {v}" for k, v in fields.items())
        raise ValidationFailed(f"Invalid catalog entry: {summary}", fields=fields) from None
    check_server_url(entry.url, allow_insecure_loopback=allow_insecure_loopback)
    if entry.oauth and entry.oauth.resource:
        check_server_url(
            entry.oauth.resource,
            allow_insecure_loopback=allow_insecure_loopback,
            field="oauth.resource",
        )
    return entry


def row_values(entry: EntryInput) -> dict[str, Any]:
    """The ``approved_mcps`` columns of ``entry``, as stored (JSON values; the open tool
    policy as None)."""
    data = entry.model_dump(mode="json")
    data["tool_policy"] = None if entry.tool_policy.is_open else entry.tool_policy.to_json()
    return data


def stored_values(row: Any) -> dict[str, Any]:
    """An ``approved_mcps`` row's entry columns, comparable with :func:`row_values`."""
    data = {name: getattr(row, name) for name in EntryInput.model_fields}
    data["headers"] = data["headers"] or []
    return data


def check_header_values(declared: list[dict[str, Any]], headers: object) -> dict[str, str]:
    """The values a user gives for the ``headers`` a ``static_headers`` entry declares,
    by their declared names (stripped).

    Raises
    ------
    ValidationFailed
        with one message per header not declared, missing, empty, too long or not one line.
    """
    if not isinstance(headers, dict):
        raise ValidationFailed(
            "'headers' must be an object of header name to value.",
            fields={"headers": "object required"},
        )
    names = {h["name"].lower(): h["name"] for h in declared}
    values: dict[str, str] = {}
    fields: dict[str, str] = {}
    for name, value in headers.items():
        canonical = names.get(str(name).lower())
        if canonical is None:
            fields[str(name)] = "not declared by this catalog entry"
        elif not isinstance(value, str) or not value.strip():
            fields[canonical] = "must be a non-empty string"
        elif len(value) > MAX_HEADER_VALUE or any(c in value for c in "\r\n\0"):
            fields[canonical] = f"at most {MAX_HEADER_VALUE} characters, one line"
        else:
            values[canonical] = value.strip()
    for canonical in names.values():
        if canonical not in values and canonical not in fields:
            fields[canonical] = "required"
    if fields:
        raise ValidationFailed(
            "Invalid headers: " + "; ".join(f"{k}: {v}" for k, v in fields.items()),
            fields=fields,
        )
    return values
