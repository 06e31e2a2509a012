"""What an agent reads about code mode: the server's instructions and its three tools'
descriptions and input schemas (:func:`code_mode_tools`).

The descriptions are the whole manual a model gets, so they say how to call the user's
tools from code (``from dodo_jupyter import tools``; ``tools.<server>.<tool>(...)``),
to look them up with ``search_tools`` first, to print summaries rather than raw
results, and what the limits are (with this server's values).
"""

from __future__ import annotations

import mcp_types as types

__all__ = ["INSTRUCTIONS", "code_mode_tools"]

INSTRUCTIONS = (
    "Code mode for this Jupyter user's connected MCP tools. Find tools with search_tools, "
    "then write Python that calls them (from dodo_jupyter import tools; "
    "tools.<server>.<tool>(...)) and run it with run_python in a Jupyter kernel kept for "
    "this session. Process results in code and print only what you need. Every run is "
    "kept as a cell of a notebook the user can open."
)

_SEARCH = """Find the user's connected tools before writing code that calls them.

query: words to look for in tool names and descriptions ("" lists every tool).
detail: "names" (just the names), "signatures" (default: how to call each one from \
Python, with a one-line summary) or "full" (descriptions and argument schemas too).

Tools are grouped by server: a tool listed as <server>__<tool> is called in run_python \
as tools.<server>.<tool>(...)."""

_RUN = """Run Python code in this session's Jupyter kernel and get back what it printed \
(stdout and stderr), the value of its last expression, images (matplotlib figures, \
IPython.display.Image) and any error with its traceback.

Call the user's tools from the code:

    from dodo_jupyter import tools
    result = tools.<server>.<tool>(argument=value)

Use search_tools first to find the tools and their exact arguments. Do the work in \
code: loop, filter, join and count there, and print a short summary, not whole results \
(they stay in the kernel's variables for later runs). A tool the user's policy refuses, \
or that fails, raises an exception with the reason.

State (variables, imports, functions) persists between run_python calls of this session \
until reset, a timeout or {idle} of inactivity. The kernel runs as the user, in the \
folder of this session's notebook; each run becomes a cell of that notebook, which the \
user can open and rerun.

Limits: timeout_s (default {default:g} s, at most {most:g} s) - past it the kernel is \
interrupted and restarted, and its state is lost; output beyond {output:,} bytes is cut \
(the result says how much); memory {memory}."""

_RESET = """Restart this session's kernel: every variable, import and function is gone. \
Use it when the kernel is stuck or its state is confusing. Its notebook goes on."""


def _idle(seconds: float) -> str:
    if seconds <= 0:
        return "the end of the session"
    if seconds >= 120:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds"


def code_mode_tools(
    *,
    run_timeout: float,
    max_run_timeout: float,
    max_output_bytes: int,
    memory_limit_mb: int,
    idle_timeout: float,
) -> list[types.Tool]:
    """``search_tools``, ``run_python`` and ``reset``, described with these limits."""
    memory = f"at most {memory_limit_mb:,} MiB" if memory_limit_mb > 0 else "not limited"
    default = min(run_timeout, max_run_timeout)
    run_text = _RUN.format(
        idle=_idle(idle_timeout),
        default=default,
        most=max_run_timeout,
        output=max_output_bytes,
        memory=memory,
    )
    return [
        types.Tool(
            name="search_tools",
            title="Search the user's tools",
            description=_SEARCH,
            input_schema={
                "type": "object",
                "properties": {
                    "query": {
                        "type": "string",
                        "description": "Words to look for; '' lists every tool.",
                    },
                    "detail": {
                        "type": "string",
                        "enum": ["names", "signatures", "full"],
                        "default": "signatures",
                    },
                },
                "required": ["query"],
            },
            annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
        ),
        types.Tool(
            name="run_python",
            title="Run Python (calling the user's tools)",
            description=run_text,
            input_schema={
                "type": "object",
                "properties": {
                    "code": {"type": "string", "description": "Python source to run."},
                    "timeout_s": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "description": (
                            f"Seconds the run may take (default {default:g}, at most "
                            f"{max_run_timeout:g})."
                        ),
                    },
                },
                "required": ["code"],
            },
            annotations=types.ToolAnnotations(
                read_only_hint=False, destructive_hint=True, open_world_hint=True
            ),
        ),
        types.Tool(
            name="reset",
            title="Restart the kernel",
            description=_RESET,
            input_schema={"type": "object", "properties": {}},
            annotations=types.ToolAnnotations(
                read_only_hint=False, destructive_hint=True, idempotent_hint=True
            ),
        ),
    ]
