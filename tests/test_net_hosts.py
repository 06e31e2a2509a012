"""One host rule (dodo_jupyter.net.hosts): the outbound guard, the connect check of
URLs without a catalog entry (DodoApp.allowed_hosts), the catalog's known_hosts and the
DodoApp.allowed_hosts setting all read and match hosts the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from traitlets import TraitError

from dodo_jupyter.catalog.entry import parse_entry
from dodo_jupyter.connection_targets import resolve_target
from dodo_jupyter.connections import ConnectionService
from dodo_jupyter.exceptions import Forbidden, OutboundRefused, ValidationFailed
from dodo_jupyter.identity import LocalIdentityResolver
from dodo_jupyter.net import hosts
from dodo_jupyter.net.hosts import (
    canonical_host,
    host_allowed,
    parse_host_rule,
    rule_for_url,
    url_allowed,
    url_host_port,
)
from dodo_jupyter.net.policy import OutboundPolicy, check_url
from dodo_jupyter.runtime import DodoRuntime
from dodo_jupyter.runtime_settings import RuntimeSettings
from dodo_jupyter.settings import DodoSettings

from .conftest import Api
from .mcp_peers import RunningServer, running_mcp_server

#: (rule, URL, whether the rule admits the URL)
CASES = [
    # ports: a rule without a port admits every port; with one, only that port (a
    # URL without a port is on its scheme's default)
    ("127.0.0.1", "http://127.0.0.1:8123/mcp", True),
    ("127.0.0.1:8123", "http://127.0.0.1:8123/mcp", True),
    ("127.0.0.1:8123", "http://127.0.0.1:8124/mcp", False),
    ("127.0.0.1:8123", "http://127.0.0.1/mcp", False),
    ("mcp.example.com", "https://mcp.example.com:443/mcp", True),
    ("mcp.example.com", "https://mcp.example.com:8443/mcp", True),
    ("mcp.example.com:443", "https://mcp.example.com/mcp", True),
    ("mcp.example.com:8443", "https://mcp.example.com/mcp", False),
    ("localhost:80", "http://localhost/mcp", True),
    # wildcards: subdomains at any depth, not the apex, not look-alikes
    ("*.example.com", "https://a.example.com/mcp", True),
    ("*.example.com", "https://a.b.example.com/mcp", True),
    ("*.example.com", "https://example.com/mcp", False),
    ("*.example.com", "https://badexample.com/mcp", False),
    ("*.example.com", "https://example.com.evil.test/mcp", False),
    ("*.example.com:8443", "https://a.example.com:8443/mcp", True),
    ("*.example.com:8443", "https://a.example.com/mcp", False),
    # exact names are exact
    ("example.com", "https://a.example.com/mcp", False),
    ("127.0.0.1", "http://127.0.0.2/mcp", False),
    # IPv6 literals, bracketed or not in the rule, compared as addresses
    ("::1", "http://[::1]:8123/mcp", True),
    ("[::1]", "http://[::1]/mcp", True),
    ("[::1]:8123", "http://[::1]:8123/mcp", True),
    ("[::1]:8123", "http://[::1]:9/mcp", False),
    ("0:0:0:0:0:0:0:1", "http://[::1]:8123/mcp", True),
    ("::1", "http://[0::1]:8123/mcp", True),
    ("[2606:4700::1]:8443", "https://[2606:4700:0:0::1]:8443/mcp", True),
    ("2606:4700::1", "https://[2606:4700::2]/mcp", False),
    # trailing dots: the DNS root, the same host
    ("example.com.", "https://example.com/mcp", True),
    ("example.com", "https://example.com./mcp", True),
    ("*.example.com.", "https://a.example.com./mcp", True),
    ("127.0.0.1", "http://127.0.0.1.:8123/mcp", True),
    # case
    ("MCP.Example.COM", "https://mcp.example.com/mcp", True),
    ("mcp.example.com", "https://MCP.EXAMPLE.com/mcp", True),
    ("*.EXAMPLE.com", "https://A.example.COM/mcp", True),
    # international names, IDNA-encoded on both sides
    ("bücher.example", "https://xn--bcher-kva.example/mcp", True),
    ("xn--bcher-kva.example", "https://BÜCHER.example/mcp", True),
    ("*.bücher.example", "https://shop.bücher.example/mcp", True),
    ("bücher.example", "https://bucher.example/mcp", False),
]

IDS = [f"{rule}-{url}-{'yes' if ok else 'no'}" for rule, url, ok in CASES]


def guard_allows(rules: set[str], url: str) -> bool:
    try:
        check_url(url, OutboundPolicy(allowed_hosts=frozenset(rules), allow_insecure_loopback=True))
    except OutboundRefused as e:
        assert "not an allowed host" in e.message, e.message
        return False
    return True


@pytest_asyncio.fixture
async def runtimes(tmp_path: Path) -> AsyncIterator[Any]:
    """Builds opened runtimes (SQLite) with the MCP services, for a list of allowed hosts."""
    made: list[DodoRuntime] = []

    async def make(allowed: list[str]) -> ConnectionService:
        n = len(made)
        settings = RuntimeSettings(
            db_url=f"sqlite:///{tmp_path / f'd{n}.sqlite'}",
            key_file=tmp_path / f"k{n}",
            default_catalog=False,
            environ={},
            catalog_cache_ttl=0.0,
            allowed_hosts=allowed,
            allow_insecure_loopback=True,
        )
        runtime = DodoRuntime(settings, LocalIdentityResolver("owner"))
        runtime.open_sync()
        made.append(runtime)
        await runtime.mcp_ready()
        return runtime.connections

    yield make
    for runtime in made:
        runtime.store.close()


@pytest.mark.parametrize(("rule", "url", "allowed"), CASES, ids=IDS)
async def test_every_check_agrees(runtimes: Any, rule: str, url: str, allowed: bool) -> None:
    # The guard.
    assert guard_allows({rule}, url) is allowed
    assert url_allowed([parse_host_rule(rule)], url) is allowed
    # Connecting a URL that no catalog entry names (DodoApp.allowed_hosts).
    connections = await runtimes([rule])

    def target() -> Any:
        return resolve_target(connections.catalog, None, url, connections.allowed_hosts, True)

    if allowed:
        entry, checked, flow_hosts = await target()
        assert (entry, checked) == (None, url)
        assert guard_allows(set(flow_hosts), url), "the flow could not reach the server"
    else:
        with pytest.raises(Forbidden, match="is not approved"):
            await target()
    # The rule is read the same everywhere it can be written.
    canonical = parse_host_rule(rule)
    assert OutboundPolicy(allowed_hosts=frozenset({rule})).allowed_hosts == {canonical}
    assert DodoSettings(allowed_hosts=[rule]).allowed_hosts == [canonical]
    entry = parse_entry(
        {"id": "x", "url": url, "known_hosts": [rule]}, allow_insecure_loopback=True
    )
    assert entry.known_hosts == [canonical]
    # A catalog entry's URL: the host rule its flows get admits that URL.
    assert guard_allows({rule_for_url(url)}, url)


async def test_the_issue_case_connects_over_rest(open_server: RunningServer, api: Api) -> None:
    """start-auth {url} on 127.0.0.1:PORT with allowed_hosts ["127.0.0.1"] (issue #19)."""
    assert open_server.url.startswith("http://127.0.0.1:")
    status, reply = await api("POST", "dodo/api/mcp/start-auth", {"url": open_server.url})
    assert status == 200, reply
    assert reply["state"] == "connected"


@pytest.fixture
def open_server() -> Iterator[RunningServer]:
    with running_mcp_server() as server:
        yield server


@pytest.fixture
def dodo_config(dodo_config: dict[str, Any]) -> dict[str, Any]:
    return {**dodo_config, "allowed_hosts": ["127.0.0.1"]}


# -- the pieces ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("https://mcp.example.com/mcp", "mcp.example.com"),
        ("https://MCP.example.com.:8443/mcp", "mcp.example.com:8443"),
        ("http://[::1]:8123/mcp", "[::1]:8123"),
        ("http://[0::1]/mcp", "::1"),
        ("https://bücher.example/", "xn--bcher-kva.example"),
    ],
)
def test_rule_for_url(url: str, rule: str) -> None:
    assert rule_for_url(url) == rule
    assert parse_host_rule(rule) == rule


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://0x7f000001/", "unusual spelling of the IPv4 address 127.0.0.1"),
        ("https://127.1/", "write it as '127.0.0.1'"),
        ("https://a b.example/", "not a valid host name"),
        ("https://[fe80::1%25eth0]/", "zone ids"),
        ("ftp://a.example/", "scheme"),
        ("https://a.example:x/", "cannot be parsed"),
    ],
)
def test_bad_url_hosts_are_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(OutboundRefused, match=reason):
        url_host_port(url)
    assert url_allowed(["a.example", "127.0.0.1"], url) is False


def test_url_host_port_uses_the_schemes_default_port() -> None:
    assert url_host_port("https://a.example/x") == ("a.example", 443)
    assert url_host_port("http://LOCALHOST./x") == ("localhost", 80)
    assert url_host_port("http://[::1]:9/") == ("::1", 9)
    assert canonical_host("[0:0::1]") == "::1"


def test_wildcards_never_match_ip_addresses() -> None:
    assert not host_allowed(["*.0.1"], "127.0.0.1", 80)
    with pytest.raises(ValidationFailed, match="wildcard cannot precede an IP"):
        parse_host_rule("*.127.0.0.1")


@pytest.mark.parametrize(
    "rule", ["*", "a.example/x", "https://a.example", "a.*.example", "a.example:0", "[::1", ""]
)
def test_bad_rules_are_refused_by_every_reader(rule: str) -> None:
    with pytest.raises(ValidationFailed, match="Invalid allowed host"):
        parse_host_rule(rule)
    with pytest.raises(ValidationFailed, match="Invalid allowed host"):
        OutboundPolicy(allowed_hosts=frozenset({rule}))
    with pytest.raises(TraitError, match=r"DodoApp\.allowed_hosts: Invalid allowed host"):
        DodoSettings(allowed_hosts=[rule])
    with pytest.raises(ValidationFailed) as info:
        parse_entry(
            {"id": "x", "url": "https://a.example/", "known_hosts": [rule]},
            allow_insecure_loopback=False,
        )
    assert "known_hosts" in info.value.details["fields"]
    assert "write a host name" in info.value.details["fields"]["known_hosts"]


def test_catalog_urls_need_a_host_the_guard_accepts() -> None:
    with pytest.raises(ValidationFailed, match=r"write it as '127\.0\.0\.1'") as info:
        parse_entry({"id": "x", "url": "http://127.1:8/mcp"}, allow_insecure_loopback=True)
    assert "url" in info.value.details["fields"]


def test_exported_members() -> None:
    for name in hosts.__all__:
        assert hasattr(hosts, name), name
