#!/usr/bin/env bash
# dodo-jupyter developer entry point.
#
#   ./run.sh demo   install into .venv, start the demo OAuth MCP server and JupyterLab with
#                   dodo (http://127.0.0.1:8888; the demo server is listed in the catalog)
#   ./run.sh test   install into .venv, then ruff, mypy, the MCP conformance suite (auth and
#                   server scenarios) and the whole test suite (including the hub_e2e tests
#                   on a real JupyterHub; configurable-http-proxy comes from npm, and the
#                   browser tests of the sidebar in Debian's Chromium at /usr/bin/chromium)
#
# Needs python3 (>= 3.11) and node (>= 20.19) on PATH; the tests also need the PostgreSQL
# at 127.0.0.1:5432 (database "test", trust auth). DODO_VENV overrides the venv path.
set -euo pipefail
cd "$(dirname "$0")"
VENV="$(realpath -m "${DODO_VENV:-.venv}")"

install() {
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip
  # Build the labextension from source on every install (hatch skips it when present).
  rm -rf dodo_jupyter/labextension
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check ".[test]"
}

case "${1:-}" in
  demo)
    install
    shift
    mkdir -p .dodo-demo
    cd .dodo-demo
    exec "$VENV/bin/jupyter" dodo demo --port="${PORT:-8888}" --no-browser "$@"
    ;;
  test)
    install
    shift
    "$VENV/bin/ruff" check dodo_jupyter tests bench
    "$VENV/bin/ruff" format --check dodo_jupyter tests bench
    "$VENV/bin/mypy"
    # The official MCP conformance suite (Node 22 from npm): the OAuth scenarios against
    # dodo's OAuth engine, the server scenarios against the gateway endpoint /dodo/mcp.
    PYTHON="$VENV/bin/python" tests/conformance/run-auth.sh
    PYTHON="$VENV/bin/python" tests/conformance/run-server.sh
    # configurable-http-proxy (npm) for the real-JupyterHub tests (hub_e2e), once.
    tests/hub/install-proxy.sh
    # Debian's Chromium for the browser tests (Playwright drives it; it never downloads a
    # browser of its own here).
    if [ ! -x "${DODO_TEST_CHROMIUM:-/usr/bin/chromium}" ]; then
      apt-get update -qq && apt-get install -y -qq chromium
    fi
    # pytest last, so its summary is the closing line.
    exec "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
    ;;
  *)
    echo "usage: ./run.sh demo|test [extra args]" >&2
    exit 2
    ;;
esac
