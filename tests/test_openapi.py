"""The OpenAPI document (dodo_jupyter/openapi.json) matches the routes, and is served.

Fast and offline: routes and handler classes are inspected, not called. The fuzz run
against a live server is tests/test_openapi_fuzz.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from dodo_jupyter.handlers import routes
from dodo_jupyter.openapi import load_document, render_document

from .conftest import Api

#: The HTTP methods a handler may implement and a path item may document.
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def path_of(pattern: str) -> str:
    """A tornado route pattern as an OpenAPI path: ``(?P<id>[^/]+)`` → ``{id}``."""
    return _GROUP.sub(r"{\1}", pattern)


def implemented_methods(handler: type) -> set[str]:
    """The methods dodo's own classes define (jupyter_server's and tornado's defaults —
    405 answers, CORS preflight — are not the API)."""
    return {
        method
        for method in METHODS
        for klass in handler.__mro__
        if klass.__module__.startswith("dodo_jupyter.") and method in vars(klass)
    }


def documented_methods(path_item: dict[str, Any]) -> set[str]:
    return {method for method in METHODS if method in path_item}


def test_document_is_valid_openapi_3_1() -> None:
    document = load_document()
    assert document["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(document).validate()


def test_every_route_is_documented_with_exactly_its_methods() -> None:
    paths = load_document()["paths"]
    for pattern, handler in routes():
        path = path_of(pattern)
        assert path in paths, f"{path} ({handler.__name__}) is missing from openapi.json"
        implemented = implemented_methods(handler)
        assert implemented, f"{handler.__name__} implements no HTTP method"
        assert documented_methods(paths[path]) == implemented, (
            f"{path}: openapi.json documents {sorted(documented_methods(paths[path]))}, "
            f"{handler.__name__} implements {sorted(implemented)}"
        )


def test_every_documented_path_is_a_route() -> None:
    routed = {path_of(pattern) for pattern, _ in routes()}
    for path in load_document()["paths"]:
        assert path in routed, f"openapi.json documents {path}, which no route serves"


def test_path_parameters_match_the_route_groups() -> None:
    paths = load_document()["paths"]
    for pattern, _ in routes():
        item = paths[path_of(pattern)]
        groups = set(_GROUP.findall(pattern))
        for method in documented_methods(item):
            params = [*item.get("parameters", []), *item[method].get("parameters", [])]
            in_path = {p["name"] for p in params if p.get("in") == "path"}
            assert in_path == groups, f"{method.upper()} {path_of(pattern)}: {in_path}"


def test_every_operation_has_an_id_and_a_success_answer() -> None:
    seen: set[str] = set()
    for path, item in load_document()["paths"].items():
        for method in documented_methods(item):
            operation = item[method]
            assert operation["operationId"] not in seen, operation["operationId"]
            seen.add(operation["operationId"])
            assert any(code.startswith("2") for code in operation["responses"]), (
                f"{method.upper()} {path} documents no 2xx answer"
            )


@pytest.mark.parametrize(("base_url", "server"), [("/", "/"), ("/user/alice/", "/user/alice")])
def test_rendered_document_names_the_base_url(base_url: str, server: str) -> None:
    rendered = json.loads(render_document(base_url))
    assert rendered["servers"][0]["url"] == server
    assert rendered["paths"] == load_document()["paths"]
    assert load_document()["servers"][0]["url"] == "/"  # the shipped copy is unchanged


async def test_served_with_the_servers_base_url(api: Api, jp_base_url: str) -> None:
    status, document = await api("GET", "dodo/api/openapi.json")
    assert status == 200
    assert document["servers"][0]["url"] == jp_base_url.rstrip("/")
    assert document["paths"] == load_document()["paths"]


async def test_served_only_to_authenticated_callers(api: Api) -> None:
    status, reply = await api(
        "GET", "dodo/api/openapi.json", headers={"Authorization": "token wrong"}
    )
    assert status == 403 and reply["error"] == "forbidden"
