"""The docs stay true: every test that docs/security.md names as proof exists, and the
Grafana dashboard asks only for metrics dodo exports."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_test_the_security_model_names_exists() -> None:
    doc = (REPO / "docs" / "security.md").read_text()
    named = re.findall(r"`((?:hub/)?test_[a-z0-9_]+\.py)(?:::([A-Za-z0-9_]+))?`", doc)
    named = [(f, name) for f, name in named if f != "test_x.py"]  # the notation's example
    assert len(named) > 20
    missing = []
    for file, name in named:
        path = REPO / "tests" / file
        if not path.exists() or (name and f"def {name}(" not in path.read_text()):
            missing.append(f"{file}::{name}" if name else file)
    assert not missing, f"docs/security.md names tests that do not exist: {missing}"


def test_the_grafana_dashboard_queries_only_metrics_dodo_exports() -> None:
    import json

    from prometheus_client import REGISTRY

    import dodo_jupyter.governance.metrics  # noqa: F401 - registers dodo's metrics

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    exported = {
        metric.name + suffix
        for metric in REGISTRY.collect()
        for suffix in suffixes.get(metric.type, ("",))
    }
    dashboard = json.loads((REPO / "docs" / "grafana" / "dodo-dashboard.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(dodo_[a-z_]+)", target["expr"])
    }
    assert queried >= {
        "dodo_gateway_tool_calls_total",
        "dodo_gateway_tool_call_duration_seconds_bucket",
        "dodo_approvals_total",
        "dodo_oauth_refresh_total",
        "dodo_upstream_connections",
    }
    assert queried <= exported, queried - exported


def test_every_flag_and_setting_of_the_hub_service_is_documented() -> None:
    from dodo_jupyter.hub.app import DodoHubApp

    doc = (REPO / "docs" / "jupyterhub.md").read_text()
    missing = [f"--{name}" for name in [*DodoHubApp.aliases, *DodoHubApp.flags]]
    missing = [flag for flag in missing if f"`{flag}" not in doc]
    for name in DodoHubApp.class_own_traits(config=True):
        if not re.search(rf"`(DodoHubApp\.)?{name}[` =]", doc):
            missing.append(name)
    assert not missing, f"docs/jupyterhub.md does not document: {missing}"


def test_the_documented_timing_is_the_codes() -> None:
    from jupyterhub.app import JupyterHub

    from dodo_jupyter import maintenance, runtime
    from dodo_jupyter.hub.app import DodoHubApp
    from dodo_jupyter.settings import DodoSettings

    doc = (REPO / "docs" / "jupyterhub.md").read_text()
    timing = doc[doc.index("### Timing") : doc.index("### The service's API")]
    assert "`DodoApp.hygiene_interval` (3600 s" in timing
    assert DodoSettings.hygiene_interval.default_value == 3600.0
    assert "then every hour in the background" in timing
    assert "older than a minute" in timing and runtime.REQUEST_HYGIENE_SPACING_S == 60.0
    assert "once a minute in the background" in timing
    assert maintenance.MAINTENANCE_INTERVAL_S == 60.0
    assert "up to 30 s" in timing and DodoHubApp.hub_auth_cache_max_age.default_value == 30
    assert "then every 60 s" in timing and JupyterHub.service_check_interval.default_value == 60
