#!/usr/bin/env bash
# Install configurable-http-proxy (JupyterHub's proxy, from npm) for the hub_e2e tests.
#
#   tests/hub/install-proxy.sh     # from anywhere; idempotent, quiet when already installed
#
# Installs the pinned version into tests/hub/.node (git-ignored) once; the tests find it at
# tests/hub/.node/node_modules/.bin/configurable-http-proxy (override with $DODO_TEST_CHP).
# Needs node >= 20 and npm on PATH. npm warns EBADENGINE on node 20 (one dependency asks
# for node >= 22); the proxy works regardless.
set -euo pipefail

CHP_VERSION=5.3.0

prefix="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/.node"
package_json="$prefix/node_modules/configurable-http-proxy/package.json"

installed="$(node -p 'require(process.argv[1]).version' "$package_json" 2>/dev/null || true)"
if [[ "$installed" == "$CHP_VERSION" && -x "$prefix/node_modules/.bin/configurable-http-proxy" ]]; then
    exit 0
fi
if ! command -v npm >/dev/null; then
    echo "install-proxy.sh: npm is needed once to install configurable-http-proxy@$CHP_VERSION" >&2
    exit 1
fi
echo "install-proxy.sh: installing configurable-http-proxy@$CHP_VERSION into $prefix" >&2
mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error \
    "configurable-http-proxy@$CHP_VERSION" >&2
