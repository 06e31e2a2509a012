"""What Zero to JupyterHub makes of the ``values.yaml`` in ``docs/jupyterhub.md``.

Kubernetes cannot run here, so the end-to-end tests deploy the documented values the way
the chart's ``jupyterhub_config.py`` (jupyterhub/zero-to-jupyterhub-k8s,
``jupyterhub/files/hub/jupyterhub_config.py``) turns them into traitlets configuration,
in the chart's order, for the keys the document uses:

==========================  ==============================================================
``singleuser.extraEnv``     the servers' environment (the chart sets
                            ``c.KubeSpawner.environment``; here the harness's
                            ``c.Spawner.environment`` gets the entries)
``hub.services.<name>``     ``c.JupyterHub.services.append({"name": <name>, ...})`` (the
                            chart also gives it an API token from its Secret; the hub
                            makes one here)
``hub.loadRoles.<name>``    ``c.JupyterHub.load_roles.append({"name": <name>, ...})``
``hub.config.<Section>``    ``c.<Section>.update(...)``: a YAML list stays a list
``hub.extraConfig.<key>``   executed as written, in key order, last
==========================  ==============================================================

:data:`KUBERNETES_ONLY` keys are accepted and have no effect on one machine. Any other
key raises :class:`UnknownKey`: the document cannot promise what the tests do not deploy.
:func:`on_this_machine` replaces the cluster's names (the ``hub`` Service, port 10101,
``0.0.0.0``, the hub image's ``python3`` and volume ``/srv/jupyterhub/``), and each must
be found.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "KUBERNETES_ONLY",
    "UnknownKey",
    "docs_values",
    "jupyterhub_config",
    "merge_values",
    "on_this_machine",
]

#: The marker of the values block in ``docs/jupyterhub.md`` (an HTML comment before it).
MARKER = "deployed by the tests through tests/hub/z2jh.py"

#: Keys of the documented values that only Kubernetes acts on, and why.
KUBERNETES_ONLY: dict[tuple[str, str], str] = {
    ("hub", "image"): "the hub image with dodo installed (here: this checkout)",
    ("hub", "service"): "the hub's Kubernetes Service (its extra port for the users' pods)",
    ("hub", "networkPolicy"): "who may reach the hub pod",
    ("singleuser", "networkPolicy"): "where the users' pods may connect",
}

#: Keys translated into configuration (see the module docstring).
TRANSLATED = {
    ("hub", "services"),
    ("hub", "loadRoles"),
    ("hub", "config"),
    ("hub", "extraConfig"),
    ("singleuser", "extraEnv"),
}


class UnknownKey(ValueError):
    """A values key this translation does not know: teach it what the chart does."""


def docs_values(doc: Path) -> str:
    """The ```yaml block after :data:`MARKER` in ``doc``, as written."""
    text = doc.read_text()
    try:
        start = text.index("```yaml\n", text.index(MARKER)) + len("```yaml\n")
    except ValueError:
        raise UnknownKey(f"{doc}: no ```yaml block after {MARKER!r}") from None
    return text[start : text.index("```", start)]


def on_this_machine(values: str, *, port: int, volume: Path) -> dict[str, Any]:
    """Parse ``values`` with the cluster's names replaced: the ``hub`` Service and the
    service's ``0.0.0.0`` at port 10101 by ``127.0.0.1:port``, ``/srv/jupyterhub/`` by
    ``volume``, a service command's ``python3`` by this interpreter."""
    replacements = {
        "http://hub:10101": f"http://127.0.0.1:{port}",
        "http://0.0.0.0:10101": f"http://127.0.0.1:{port}",
        "/srv/jupyterhub/": f"{volume}/",
    }
    for old, new in replacements.items():
        if old not in values:
            raise UnknownKey(f"the documented values no longer contain {old!r}")
        values = values.replace(old, new)
    parsed: dict[str, Any] = yaml.safe_load(values)
    commands = [s.get("command") for s in parsed.get("hub", {}).get("services", {}).values()]
    if not any(c and c[0] == "python3" for c in commands):
        raise UnknownKey("no documented service runs python3")
    for command in commands:
        if command and command[0] == "python3":
            command[0] = sys.executable
    return parsed


def merge_values(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's merge of several values files: mappings merge key by key, the later layer
    wins anything else (a list replaces a list)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                merged[key] = merge_values(merged[key], value)
            else:
                merged[key] = value
    return merged


def jupyterhub_config(values: Mapping[str, Any]) -> str:
    """The Python the chart would run for ``values`` (``c`` is the config object)."""
    _check_keys(values)
    hub = values.get("hub", {})
    singleuser = values.get("singleuser", {})
    lines = ["# tests/hub/z2jh.py: what Zero to JupyterHub makes of docs/jupyterhub.md"]
    if "extraEnv" in singleuser:
        lines.append(f"c.Spawner.environment.update({dict(singleuser['extraEnv'])!r})")
    for name, service in hub.get("services", {}).items():
        entry = {"name": name, **service}
        lines.append(f"c.JupyterHub.services.append({entry!r})")
    for name, role in hub.get("loadRoles", {}).items():
        entry = {"name": name, **role}
        lines.append(f"c.JupyterHub.load_roles.append({entry!r})")
    for section, settings in hub.get("config", {}).items():
        if not re.fullmatch(r"[A-Z]\w*", section):  # the chart exits on these too
            raise UnknownKey(f"hub.config.{section}: sections are Configurable class names")
        lines.append(f"c[{section!r}].update({dict(settings)!r})")
    for key, source in sorted(hub.get("extraConfig", {}).items()):
        lines.append(f"exec({source!r})  # hub.extraConfig.{key}")
    return "\n".join(lines) + "\n"


def _check_keys(values: Mapping[str, Any]) -> None:
    for top, section in values.items():
        if not isinstance(section, Mapping):
            raise UnknownKey(f"{top}: expected a mapping, got {section!r}")
        for key in section:
            if (top, key) not in TRANSLATED and (top, key) not in KUBERNETES_ONLY:
                raise UnknownKey(
                    f"{top}.{key} is not translated by tests/hub/z2jh.py: add what the "
                    "chart's jupyterhub_config.py does with it, or list it in "
                    "KUBERNETES_ONLY"
                )
