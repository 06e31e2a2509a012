#!/usr/bin/env bash
# dodo-jupyter developer entry point.
#
#   ./run.sh lab    install into .venv and start JupyterLab with dodo (http://127.0.0.1:8888)
#   ./run.sh test   install into .venv, then ruff, mypy and the whole test suite
#
# Needs python3 (>= 3.11) and node (>= 20.19) on PATH; the tests also need the PostgreSQL
# at 127.0.0.1:5432 (database "test", trust auth). DODO_VENV overrides the venv path.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${DODO_VENV:-.venv}"

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
  lab)
    install
    shift
    export JUPYTER_CONFIG_DIR="${JUPYTER_CONFIG_DIR:-$PWD/.dodo-lab/config}"
    export JUPYTER_DATA_DIR="${JUPYTER_DATA_DIR:-$PWD/.dodo-lab/data}"
    mkdir -p .dodo-lab/notebooks
    exec "$VENV/bin/jupyter" lab --no-browser --ip=127.0.0.1 --port="${PORT:-8888}" \
      --ServerApp.root_dir="$PWD/.dodo-lab/notebooks" $( [ "$(id -u)" = 0 ] && echo --allow-root ) "$@"
    ;;
  test)
    install
    shift
    "$VENV/bin/ruff" check dodo_jupyter tests bench
    "$VENV/bin/ruff" format --check dodo_jupyter tests bench
    "$VENV/bin/mypy"
    exec "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
    ;;
  *)
    echo "usage: ./run.sh lab|test [extra args]" >&2
    exit 2
    ;;
esac
