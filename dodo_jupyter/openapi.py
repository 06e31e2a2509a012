"""The OpenAPI 3.1 document of dodo's REST API, shipped as ``dodo_jupyter/openapi.json``.

The document is written by hand, next to the handlers it describes, and served at
``GET {base_url}dodo/api/openapi.json``. Its paths are relative to the Jupyter server's
``base_url``; the served copy names that in ``servers``, so a client (or schemathesis)
can use it as it comes. Two tests keep it true:

``tests/test_openapi.py``
    every route of :func:`dodo_jupyter.handlers.routes` is documented with exactly the
    HTTP methods its handler implements, every documented path is a route, and the
    document validates as OpenAPI 3.1;
``tests/test_openapi_fuzz.py``
    schemathesis sends generated requests to every operation of a live server and checks
    that none answers 5xx or anything the document does not describe.

The file is read once per process (:func:`load_document`); the served bytes are built
once per ``base_url`` (:func:`render_document`).
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

__all__ = ["DOCUMENT_NAME", "load_document", "render_document"]

#: The document's file name inside the ``dodo_jupyter`` package.
DOCUMENT_NAME = "openapi.json"


@cache
def load_document() -> dict[str, Any]:
    """The document as shipped (read and parsed once; do not change the result).

    Raises
    ------
    FileNotFoundError
        when the package was installed without its data files: reinstall dodo-jupyter
        from a wheel or with ``pip install -e .``.
    """
    text = files("dodo_jupyter").joinpath(DOCUMENT_NAME).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@cache
def render_document(base_url: str) -> bytes:
    """The document as served by a server at ``base_url``: ``servers`` names it.

    Parameters
    ----------
    base_url:
        The Jupyter server's ``base_url`` (``/`` or ``/user/alice/``).
    """
    document = dict(load_document())
    server_url = base_url.rstrip("/") or "/"
    document["servers"] = [
        {"url": server_url, "description": "This Jupyter server (its base_url)."}
    ]
    return json.dumps(document, separators=(",", ":")).encode()
