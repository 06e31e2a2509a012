"""``%dodo`` and ``%%dodo``: the user's MCP servers, tools, resources and prompts from a
notebook.

Load with ``%load_ext dodo_jupyter`` (or for every kernel: ``c.InteractiveShellApp.
extensions = ["dodo_jupyter"]`` in ``ipython_kernel_config.py``). ``%dodo help`` lists
the commands. Tables render as HTML in JupyterLab and as text elsewhere; failures are a
one-line message that says what to do (no traceback) and never contain a secret.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import shlex
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import HTML, display

from .client import (
    DodoClient,
    DodoClientError,
    PromptResult,
    ResourceResult,
    ResourceTemplate,
    ToolResult,
)
from .client.discovery import MCP_TOKEN_ENV, MCP_URL_ENV
from .client.errors import clean_message

__all__ = ["DodoMagics", "ServerTable", "Table"]

HELP = """\
%dodo servers                      your connections and their state (with the consent
                                   link of one that needs more access)
%dodo catalog                      approved MCP servers you may connect
%dodo connect <id> [--timeout S]   sign in to a catalog server (a link opens the consent
                                   page; waits until connected, 300 s by default)
%dodo disconnect <id>              remove your connection (and its stored tokens)
%dodo tools [server] [--search T]  tools of your connected servers
%dodo call <tool> key=value ...    call a tool; values are JSON when they parse, else text
%dodo call <tool> --json '{...}'   ... with the arguments as one JSON object
%%dodo call <tool>                 ... with the arguments as the cell's JSON or YAML body
%dodo resources [server] [--search T]  resources and templates of your connected servers
%dodo read <uri> [name=value ...]   read a resource (values fill in a template's {name})
%dodo prompts [server] [--search T]    prompts of your connected servers
%dodo prompt <prompt> name=value ...   fill in a prompt; values are text
%dodo help                         this text

A call returns a ToolResult: it displays richly, and .value is the result as Python data.
A read returns a ResourceResult (.text, .data, .json(), .value); a prompt a PromptResult
(.messages, .text). In code use dodo_jupyter.client.DodoClient (list_tools, call_tool,
openai_tools, functions, list_resources, read_resource, list_prompts, get_prompt)."""


class Table:
    """Rows shown as an HTML table in JupyterLab and as aligned text elsewhere."""

    def __init__(self, rows: Sequence[dict[str, Any]], columns: Sequence[str], empty: str):
        self.rows = list(rows)
        self.columns = list(columns)
        self.empty = empty

    def _cell(self, row: dict[str, Any], column: str) -> str:
        value = row.get(column)
        if value is None:
            return ""
        if isinstance(value, list | dict):
            return json.dumps(value)
        return str(value)

    def __repr__(self) -> str:
        if not self.rows:
            return self.empty
        widths = {
            c: max(len(c), *(len(self._cell(r, c)[:60]) for r in self.rows)) for c in self.columns
        }
        lines = ["  ".join(c.ljust(widths[c]) for c in self.columns)]
        lines.append("  ".join("-" * widths[c] for c in self.columns))
        for row in self.rows:
            lines.append("  ".join(self._cell(row, c)[:60].ljust(widths[c]) for c in self.columns))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<p>{html.escape(self.empty)}</p>"
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{html.escape(self._cell(r, c))}</td>" for c in self.columns)
            + "</tr>"
            for r in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class ServerTable(Table):
    """``%dodo servers``: the connections, then for each one that needs more access (a
    tool asked for more scopes, state ``needs_scope``) the link that grants them, and for
    each one whose sign-in will end (no refresh token) when it will."""

    def __init__(self, rows: Sequence[dict[str, Any]]) -> None:
        super().__init__(
            rows,
            ["catalog_id", "state", "tool_count", "error", "url"],
            "No connections yet: %dodo catalog lists servers, %dodo connect <id> connects one.",
        )
        self.step_ups = [
            (str(row.get("catalog_id") or row.get("url")), row["step_up"])
            for row in self.rows
            if isinstance(row.get("step_up"), dict)
        ]
        self.warnings = [
            (str(row.get("catalog_id") or row.get("url")), str(row["warning"]))
            for row in self.rows
            if row.get("warning")
        ]

    @staticmethod
    def _needed(step_up: dict[str, Any]) -> str:
        return " ".join(step_up.get("missing") or step_up.get("scopes") or []) or "more scopes"

    @staticmethod
    def _until(step_up: dict[str, Any]) -> str:
        try:
            return datetime.fromisoformat(str(step_up["expires_at"])).strftime("%H:%M UTC")
        except (KeyError, ValueError):
            return "ten minutes after the call"

    def __repr__(self) -> str:
        lines = [super().__repr__()]
        for name, step_up in self.step_ups:
            lines.append(
                f"\n{name} needs more access: open this URL to grant {self._needed(step_up)}, "
                f"then call the tool again (it works until {self._until(step_up)}):\n"
                f"  {step_up['consent_url']}"
            )
        for name, warning in self.warnings:
            lines.append(f"\n{name}: {warning}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        parts = [super()._repr_html_()]
        for name, step_up in self.step_ups:
            link = html.escape(str(step_up["consent_url"]), quote=True)
            parts.append(
                f"<p><b>{html.escape(name)}</b> needs more access: "
                f'<a href="{link}" target="_blank" rel="noopener">grant '
                f"{html.escape(self._needed(step_up))}</a>, then call the tool again "
                f"(the link works until {html.escape(self._until(step_up))}).</p>"
            )
        for name, warning in self.warnings:
            parts.append(f"<p><b>{html.escape(name)}</b>: {html.escape(warning)}</p>")
        return "".join(parts)


def parse_arguments(words: Sequence[str]) -> dict[str, Any]:
    """``key=value`` words as a dict; values that parse as JSON are JSON, else text."""
    arguments: dict[str, Any] = {}
    for word in words:
        key, sep, raw = word.partition("=")
        if not sep or not key:
            raise UsageError(
                f"Arguments are key=value (got {word!r}); or give --json '{{...}}' or use "
                "%%dodo call with a JSON or YAML cell."
            )
        try:
            arguments[key] = json.loads(raw)
        except ValueError:
            arguments[key] = raw
    return arguments


def parse_texts(words: Sequence[str], usage: str) -> dict[str, str]:
    """``name=value`` words as a dict of texts (prompt arguments, template values)."""
    values: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise UsageError(f"Values are name=value (got {word!r}): {usage}")
        values[key] = value
    return values


def matching(rows: list[dict[str, Any]], server: str | None, search: str) -> list[dict[str, Any]]:
    """The rows of ``server`` (all when None) whose name or description holds ``search``."""
    if server:
        rows = [r for r in rows if r.get("server_id") == server]
    needle = search.lower()
    if needle:
        rows = [
            r
            for r in rows
            if any(needle in str(r.get(k, "")).lower() for k in ("name", "uri", "description"))
        ]
    return rows


def _template_hint(template: ResourceTemplate) -> str:
    """How to read a template, then its description."""
    values = " ".join(f"{name}=…" for name in template.variables)
    hint = f"template: %dodo read <uri> {values}"
    return f"{hint}; {template.description}" if template.description else hint


def parse_cell(cell: str) -> dict[str, Any]:
    """A ``%%dodo call`` body: a JSON object, or YAML when PyYAML is installed."""
    text = cell.strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        try:
            import yaml
        except ImportError:
            raise UsageError("The cell is not JSON (install PyYAML for YAML cells).") from None
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise UsageError(f"The cell is neither JSON nor YAML: {e}") from None
    if not isinstance(value, dict):
        raise UsageError("The cell must hold one object: the tool's arguments by name.")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise UsageError(f"{message}. %dodo help lists the commands.")


@magics_class
class DodoMagics(Magics):
    """The ``%dodo`` line and cell magic."""

    def __init__(self, shell: Any, client_factory: Callable[[], DodoClient] = DodoClient):
        super().__init__(shell)
        self._client_factory = client_factory
        self._client: DodoClient | None = None
        self._made_for: tuple[str | None, str | None] = (None, None)

    @property
    def client(self) -> DodoClient:
        """The client for the gateway the environment names now: a changed
        ``DODO_MCP_URL`` or ``DODO_MCP_TOKEN`` (``%env``, a new token) makes a new one."""
        names = (os.environ.get(MCP_URL_ENV), os.environ.get(MCP_TOKEN_ENV))
        if self._client is None or names != self._made_for:
            self._client = self._client_factory()
            self._made_for = names
        return self._client

    @line_cell_magic
    def dodo(self, line: str, cell: str | None = None) -> Any:
        """Your MCP servers and tools; ``%dodo help`` lists the commands."""
        try:
            words = shlex.split(line)
        except ValueError as e:
            raise UsageError(f"Cannot read the command line: {e}") from None
        if not words or words[0] in ("help", "-h", "--help"):
            print(HELP)
            return None
        command, rest = words[0], words[1:]
        handler = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            raise UsageError(f"Unknown command {command!r}. %dodo help lists the commands.")
        try:
            return handler(rest, cell)
        except DodoClientError as e:
            raise UsageError(clean_message(str(e))) from None

    # -- commands -----------------------------------------------------------------------

    def _cmd_servers(self, words: list[str], cell: str | None) -> Table:
        return ServerTable(self.client.servers())

    def _cmd_catalog(self, words: list[str], cell: str | None) -> Table:
        rows = self.client.catalog()
        return Table(
            rows,
            ["id", "display_name", "auth_type", "description"],
            "The catalog is empty: an administrator approves servers.",
        )

    def _cmd_tools(self, words: list[str], cell: str | None) -> Table:
        parser = _Parser(prog="%dodo tools", add_help=False)
        parser.add_argument("server", nargs="?")
        parser.add_argument("--search", default="")
        args = parser.parse_args(words)
        if self.client.endpoint.has_api:
            rows = self.client.tool_settings()
        else:  # only the gateway is known: the tools agents see
            rows = [
                {"name": t.name, "server_id": t.server_id, "description": t.description}
                for t in self.client.list_tools()
            ]
        return Table(
            matching(rows, args.server, args.search),
            ["name", "server_id", "enabled", "description"],
            "No tools found: %dodo servers shows what is connected.",
        )

    def _cmd_call(self, words: list[str], cell: str | None) -> ToolResult:
        if not words:
            raise UsageError("Give the tool's name: %dodo call <server>__<tool> key=value ...")
        name, rest = words[0], words[1:]
        if cell is not None:
            if rest:
                raise UsageError("With %%dodo call, the arguments go in the cell, not the line.")
            arguments = parse_cell(cell)
        elif rest[:1] == ["--json"]:
            if len(rest) != 2:
                raise UsageError("--json takes one argument: '{...}' in quotes.")
            try:
                arguments = json.loads(rest[1])
            except ValueError as e:
                raise UsageError(f"--json is not valid JSON: {e}") from None
            if not isinstance(arguments, dict):
                raise UsageError("--json must be an object: the tool's arguments by name.")
        else:
            arguments = parse_arguments(rest)
        return self.client.call_tool(name, arguments)

    def _listing(self, command: str, words: list[str]) -> argparse.Namespace:
        parser = _Parser(prog=f"%dodo {command}", add_help=False)
        parser.add_argument("server", nargs="?")
        parser.add_argument("--search", default="")
        return parser.parse_args(words)

    def _cmd_resources(self, words: list[str], cell: str | None) -> Table:
        args = self._listing("resources", words)
        rows: list[dict[str, Any]] = [
            {
                "uri": r.uri,
                "name": r.title or r.name,
                "server_id": r.server_id,
                "mime_type": r.mime_type,
                "description": r.description,
            }
            for r in self.client.list_resources()
        ]
        rows += [
            {
                "uri": t.uri_template,
                "name": t.title or t.name,
                "server_id": t.server_id,
                "mime_type": t.mime_type,
                "description": _template_hint(t),
            }
            for t in self.client.list_resource_templates()
        ]
        return Table(
            matching(rows, args.server, args.search),
            ["uri", "name", "mime_type", "description"],
            "No resources found: %dodo servers shows what is connected.",
        )

    def _cmd_read(self, words: list[str], cell: str | None) -> ResourceResult:
        usage = "%dodo read dodo://<server>/<uri> [name=value ...]"
        if not words:
            raise UsageError(f"Give the resource's URI (%dodo resources lists them): {usage}")
        uri, values = words[0], parse_texts(words[1:], usage)
        if values or "{" in uri:
            try:
                uri = ResourceTemplate(uri).expand(**values)
            except KeyError as e:
                raise UsageError(f"Give a value for each variable: {e.args[0]}.") from None
        return self.client.read_resource(uri)

    def _cmd_prompts(self, words: list[str], cell: str | None) -> Table:
        args = self._listing("prompts", words)
        rows = [
            {
                "name": p.name,
                "server_id": p.server_id,
                "arguments": " ".join(
                    f"{a.name}=…" if a.required else f"[{a.name}=…]" for a in p.arguments
                ),
                "description": p.description,
            }
            for p in self.client.list_prompts()
        ]
        return Table(
            matching(rows, args.server, args.search),
            ["name", "arguments", "description"],
            "No prompts found: %dodo servers shows what is connected.",
        )

    def _cmd_prompt(self, words: list[str], cell: str | None) -> PromptResult:
        usage = "%dodo prompt <server>__<prompt> name=value ..."
        if not words:
            raise UsageError(f"Give the prompt's name (%dodo prompts lists them): {usage}")
        return self.client.get_prompt(words[0], **parse_texts(words[1:], usage))

    def _cmd_disconnect(self, words: list[str], cell: str | None) -> None:
        if len(words) != 1:
            raise UsageError("Give one catalog id: %dodo disconnect <id>.")
        count = self.client.disconnect(words[0])
        print(f"Disconnected {words[0]}" + (f" ({count} connections)." if count > 1 else "."))

    def _cmd_connect(self, words: list[str], cell: str | None) -> None:
        parser = _Parser(prog="%dodo connect", add_help=False)
        parser.add_argument("catalog_id")
        parser.add_argument("--timeout", type=float, default=300.0)
        args = parser.parse_args(words)
        started = self.client.start_connect(args.catalog_id)
        if started["state"] == "connected":
            print(f"{args.catalog_id} is connected.")
            return
        display_id = f"dodo-connect-{uuid.uuid4().hex}"
        link = html.escape(started["authorize_url"], quote=True)
        prompt = (
            f'<p><a href="{link}" target="_blank" rel="noopener">Authorize '
            f"{html.escape(args.catalog_id)}</a> in the page that opens.</p>"
        )
        display(HTML(prompt), display_id=display_id)
        self._wait(args.catalog_id, started["connection_id"], args.timeout, prompt, display_id)

    def _wait(
        self, catalog_id: str, connection_id: str, timeout: float, prompt: str, display_id: str
    ) -> None:
        """Poll the connection once a second, showing the time waited, until it is
        connected, failed or the timeout passed; the link is then replaced by the outcome
        so no authorization URL stays in the notebook."""

        def show(body: str) -> None:
            display(HTML(body), display_id=display_id, update=True)

        start = time.monotonic()
        while True:
            row = self.client.connection(connection_id)
            state = row["state"] if row else "removed"
            waited = time.monotonic() - start
            if state == "connected":
                assert row is not None
                tools = row["tool_count"] or 0
                show(f"<p>{html.escape(catalog_id)} is connected ({tools} tools).</p>")
                return
            if state != "authenticating" or waited > timeout:
                why = (row or {}).get("error") or (
                    f"not authorized within {timeout:.0f} s"
                    if state == "authenticating"
                    else f"its state is {state}"
                )
                message = f"{catalog_id} is not connected: {why}."
                show(f"<p>{html.escape(message)}</p>")
                raise UsageError(f"{message} Run %dodo connect {catalog_id} to try again.")
            show(f"{prompt}<p>Waiting for the authorization… {waited:.0f} s of {timeout:.0f} s</p>")
            time.sleep(1.0)
