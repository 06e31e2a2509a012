"""IPython in agent kernels (:mod:`dodo_jupyter.codemode.agent_shell`): code is
transformed exactly as IPython transforms it, and ``;`` hides a value exactly as
IPython decides, with or without the shortcut."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from IPython.core.displayhook import DisplayHook
from IPython.core.inputtransformer2 import TransformerManager

from dodo_jupyter.codemode.agent_shell import AgentTransformerManager, _no_semicolon_no_tokenizing

CELLS = [
    "x = 1\nx",
    "import asyncio\nawait asyncio.sleep(0)\n",
    "%time x = 1",
    "%%bash\necho hi\n",
    "a = %who_ls",
    "a = !ls\nb = 2",
    "files = !ls -l",
    "len?",
    "print??\n",
    "if True:\n    %time 1\n",
    "!echo hi",
    ",print a b",
    "/print 1",
    ";print a",
    "x = 7 % 3\nprint('%d' % x)",
    "if x != 1:\n    pass",
    "s = 'what?'\n",
    ">>> x = 1\n>>> x",
    "In [1]: x = 2\n",
    "    x = 1\n    y = 2\n",
    "f(1,\n  2)\n",
    "f(1\n  , 2)\n",
    "x = (1 /\n     2)",
    "x = 1\r\ny = 2",
    '"""\n%not magic\n"""\n',
    "",
]


def _transform(manager: TransformerManager, cell: str) -> object:
    try:
        return manager.transform_cell(cell)
    except Exception as e:  # the same failure counts as the same answer
        return type(e)


@pytest.mark.parametrize("cell", CELLS)
def test_agent_code_is_transformed_as_ipython_does(cell: str) -> None:
    assert _transform(AgentTransformerManager(), cell) == _transform(TransformerManager(), cell)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab =%!?,;/()'\"#:\n\t \\1", max_size=40))
def test_any_code_is_transformed_as_ipython_does(cell: str) -> None:
    assert _transform(AgentTransformerManager(), cell) == _transform(TransformerManager(), cell)


@pytest.mark.parametrize(
    "cell", ["1;", "1", "x = 1;", "1  # no;", "f(';')", "1; # hidden", "1;\n\n", "", "a;b"]
)
def test_a_semicolon_hides_a_value_as_in_ipython(cell: str) -> None:
    class Hook:
        semicolon_at_end_of_expression = staticmethod(DisplayHook.semicolon_at_end_of_expression)

    hook = Hook()
    _no_semicolon_no_tokenizing(hook)
    assert hook.semicolon_at_end_of_expression(cell) == bool(
        DisplayHook.semicolon_at_end_of_expression(cell)
    )
