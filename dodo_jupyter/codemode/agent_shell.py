"""IPython in agent kernels: the same, without tokenizing each run's code twice in pure
Python when it cannot hold IPython's own syntax.

Before IPython runs a cell it tokenizes all of it (Python's ``tokenize``, pure Python)
to find IPython syntax (``%magic``, ``!cmd``, ``a = %x``, ``a = !x``, ``obj?``), and
after it shows the value it tokenizes it again to see whether the cell ends in ``;``
(which hides the value). For the kilobyte of code an agent sends in one run that was
about a millisecond of the kernel, on the way to every answer.

Each of those searches looks for certain characters, so where the code has none of them
the answer is known without tokenizing:

* IPython syntax needs a ``!``, ``?`` or ``%`` somewhere, or a line that starts (after
  its indentation) with ``,``, ``;`` or ``/``; code with none of these is left as it is
  (:class:`AgentTransformerManager`), and any other code goes through IPython's
  transformations as before;
* a cell without a ``;`` does not end in one (:func:`_no_semicolon_no_tokenizing`).

Agent kernels load this module as an IPython extension (``--IPKernelApp.extensions``,
:data:`.kernelspec.KERNEL_OPTIONS`).
"""

from __future__ import annotations

import re
from typing import Any

from IPython.core.inputtransformer2 import TransformerManager

__all__ = ["AgentTransformerManager", "load_ipython_extension"]

#: What a token transformation of IPython (magic, shell or help syntax) needs to find:
#: one of ``! ? %`` anywhere, or ``, ; /`` first on a line (IPython's escapes). A
#: carriage return (old line ends) also takes IPython's own path.
_MAYBE_IPYTHON_SYNTAX = re.compile(r"[!?%\r]|^[ \t\f]*[,;/]", re.MULTILINE)


class AgentTransformerManager(TransformerManager):
    """IPython's transformations, skipping the token ones (and the tokenizing they need)
    for code without the characters they look for."""

    def do_token_transforms(self, lines: list[str]) -> list[str]:
        if _MAYBE_IPYTHON_SYNTAX.search("".join(lines)) is None:
            return lines
        result: list[str] = super().do_token_transforms(lines)
        return result


def _no_semicolon_no_tokenizing(hook: Any) -> None:
    """Make ``hook`` (the shell's display hook) skip tokenizing a cell without ``;``."""
    base = type(hook)
    tokenizing = base.semicolon_at_end_of_expression

    class AgentDisplayHook(base):  # type: ignore[misc, valid-type]
        @staticmethod
        def semicolon_at_end_of_expression(expression: str) -> bool:
            return ";" in expression and bool(tokenizing(expression))

    hook.__class__ = AgentDisplayHook


def load_ipython_extension(shell: Any) -> None:
    """IPython's entry point for an extension: set ``shell`` up (see the module
    docstring)."""
    shell.input_transformer_manager = AgentTransformerManager()
    _no_semicolon_no_tokenizing(shell.displayhook)
