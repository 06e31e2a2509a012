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
