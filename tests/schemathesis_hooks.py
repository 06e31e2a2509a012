"""schemathesis hooks of tests/test_openapi_fuzz.py (loaded with ``SCHEMATHESIS_HOOKS``).

``no_library_internals``: an error answer is for a person. It names the field and what is
expected; it never carries a library's internals: a pydantic error dump ("1 validation
error for …", "Input should be …", ``[type=…]``, a link to errors.pydantic.dev) or a
Python exception class name. With ``--checks all`` it runs on every response of every
operation, so every bad input schemathesis generates (the coverage phase's negative
cases, the fuzzing phase's) is swept for them.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis

__all__ = ["LIBRARY_INTERNALS", "library_internals_in", "no_library_internals"]

#: What no error body may contain.
LIBRARY_INTERNALS = re.compile(
    r"validation errors? for|errors\.pydantic\.dev|Input should be|\btype=|"
    r"\b[A-Z][a-zA-Z]+(?:Error|Exception)\b|Traceback \(most recent call last\)"
)


def library_internals_in(text: str) -> list[str]:
    """The library internals found in ``text`` (empty when there are none)."""
    return [m.group(0) for m in LIBRARY_INTERNALS.finditer(text)]


@schemathesis.check
def no_library_internals(ctx: Any, response: Any, case: Any) -> bool | None:
    """Fail when a 4xx or 5xx answer's body carries a library's internals."""
    if response.status_code < 400:
        return None
    found = library_internals_in(response.text or "")
    if found:
        raise AssertionError(
            f"The {response.status_code} answer carries library internals {found!r}: "
            f"{(response.text or '')[:300]}"
        )
    return None
