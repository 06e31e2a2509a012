"""Code mode: agents write Python that calls the user's connected tools, run it in a
Jupyter kernel of their own, and every run becomes a notebook the user can open.

An agent reaches it at ``{base_url}dodo/mcp/codemode`` (same credentials as the gateway)
and gets three tools: ``search_tools``, ``run_python`` and ``reset``. Each MCP session
has its own kernel, which reaches the tools only through the gateway (``/dodo/mcp``) with
a short-lived token of its own, so every call made from code passes the governance gate.

The kernel side, the tools as typed Python functions behind ``from dodo_jupyter import
tools``, is :mod:`dodo_jupyter.client.typed_api`. Here: :mod:`.search` (what
``search_tools`` shows a model: the same names and signatures), :mod:`.settings` (the
``DodoApp.code_mode*`` traits), :mod:`.launch` (the kernel's launcher: isolation with
:mod:`.landlock` and :mod:`.capabilities`, memory limit), :mod:`.isolation` (which paths
kernels must not see, and what the launcher reports), :mod:`.kernelspec` (the
``dodo-agent`` spec and the kernel's environment; in the kernel, :mod:`.kernel_streams`
and :mod:`.agent_shell` trim ipykernel's and IPython's work per run), :mod:`.kernels`
(one kernel per session: start, limits, culling), :mod:`.execution` (running code and
collecting its outputs), :mod:`.results` (outputs as MCP content, tracebacks trimmed),
:mod:`.notebooks` (the runs' notebooks), :mod:`.service` (the three tools),
:mod:`.endpoint` (their MCP server), :mod:`.host` (all of it inside one Jupyter server).
See docs/code-mode.md.
"""
