#!/usr/bin/env bash
# End-to-end benchmarks on this machine: release build, graph-sim in a separate process over
# loopback HTTP, `safegpt sync` timed with its peak RSS, on SQLite (and on PostgreSQL when
# BENCH_DATABASE_URL names an empty database).
#
# usage: bench/run.sh [USERS] [GROUPS]      defaults: 100000 50 (nesting 3)
#        BENCH_MILLION=1 bench/run.sh       adds the 1,000,000-user full sync
#        BENCH_SDK=0 bench/run.sh           skips the msgraph-sdk listing (about 5 minutes for 100,000 users)
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-100000}
GROUPS=${2:-50}
cargo build --release --locked --bin safegpt --bin graph-sim >/dev/null 2>&1 ||
    cargo build --release --locked --bin safegpt --bin graph-sim
BIN=$PWD/target/release
WORK=$(mktemp -d)
cleanup() { kill "${SIM_PID:-}" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

now() { date +%s.%N; }

# Runs a command, prints "seconds peak_rss_mb" (peak RSS sampled from /proc every 5 ms).
measure() {
    local start end peak=0 v
    start=$(now)
    "$@" > "$WORK/last.out" 2> "$WORK/last.err" &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        v=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        [ -n "$v" ] && peak=$v
        sleep 0.005
    done
    wait "$pid" || { cat "$WORK/last.err" >&2; return 1; }
    end=$(now)
    echo "$(echo "$end - $start" | bc) $((peak / 1024))"
}

start_sim() {
    local spec=$1
    local t0 t1
    t0=$(now)
    "$BIN/graph-sim" --listen 127.0.0.1:0 --generate "$spec" > "$WORK/sim.out" 2>/dev/null &
    SIM_PID=$!
    for _ in $(seq 6000); do grep -q client-secret "$WORK/sim.out" 2>/dev/null && break; sleep 0.01; done
    t1=$(now)
    SIM_START=$(echo "$t1 - $t0" | bc)
    SIM=$(awk 'NR==1 {print $3}' "$WORK/sim.out")
}

field() { awk -v k="$1" '$1==k {print $2}' "$WORK/sim.out"; }

configure() {
    local data=$1
    printf %s "$(field client-secret)" | SAFEGPT_DATA_DIR="$data" "$BIN/safegpt" azure configure --active true \
        --tenant-id "$(field tenant-id)" --client-id "$(field client-id)" --client-secret-stdin \
        --login-url "$SIM" --graph-url "$SIM" --threshold-count 10000000 >/dev/null
}

stats() { curl -s "$SIM/_sim/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(sum(s["requests"].values()) if isinstance(s["requests"], dict) else sum(r["count"] for r in s["requests"]), s.get("bytesSent", s.get("bytes_sent", 0)))'; }

row() { printf '| %-44s | %8s | %8s | %10s | %8s | %10s |\n' "$@"; }

echo "## safegpt sync benchmarks — $(nproc) cores, $(date -u +%Y-%m-%d), release build"
echo
row "scenario" "wall s" "peak MB" "users/s" "requests" "MB read"
row "---" "---:" "---:" "---:" "---:" "---:"

run_full() {
    local label=$1 users=$2 backend_url=${3:-}
    local data="$WORK/data-$label"
    mkdir -p "$data"
    [ -n "$backend_url" ] && export SAFEGPT_DATABASE_URL="$backend_url" || unset SAFEGPT_DATABASE_URL
    configure "$data"
    curl -s -X DELETE "$SIM/_sim/stats" >/dev/null
    read -r secs mb < <(measure env SAFEGPT_DATA_DIR="$data" "$BIN/safegpt" sync --json)
    read -r reqs bytes < <(stats)
    row "$label: first full sync ($users users)" "$secs" "$mb" "$(echo "$users / $secs" | bc)" "$reqs" "$(echo "scale=1; $bytes / 1048576" | bc)"
    curl -s -X DELETE "$SIM/_sim/stats" >/dev/null
    read -r secs mb < <(measure env SAFEGPT_DATA_DIR="$data" "$BIN/safegpt" sync --json)
    read -r reqs bytes < <(stats)
    row "$label: full sync again, nothing changed" "$secs" "$mb" "$(echo "$users / $secs" | bc)" "$reqs" "$(echo "scale=1; $bytes / 1048576" | bc)"
}

start_sim "users=$USERS,groups=$GROUPS,nesting=3,guests=5,disabled=5,seed=1"
echo
run_full "SQLite" "$USERS"
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
    run_full "PostgreSQL" "$USERS" "$BENCH_DATABASE_URL"
fi
unset SAFEGPT_DATABASE_URL

kill "$SIM_PID" 2>/dev/null || true
echo
echo "graph-sim generated and loaded the $USERS-user tenant in ${SIM_START} s."

# The same listing with Microsoft's Python SDK (the code a team would otherwise write),
# against the same tenant, graph-sim advertising the real Microsoft hosts.
if [ "${BENCH_SDK:-1}" = 1 ] && [ -x .venv-sdk/bin/python ]; then
    "$BIN/graph-sim" --listen 127.0.0.1:0 --generate "users=$USERS,groups=$GROUPS,nesting=3,guests=5,disabled=5,seed=1" \
        --public-login-url https://login.microsoftonline.com --public-graph-url https://graph.microsoft.com \
        > "$WORK/sim.out" 2>/dev/null &
    SIM_PID=$!
    for _ in $(seq 6000); do grep -q client-secret "$WORK/sim.out" 2>/dev/null && break; sleep 0.01; done
    SIM=$(awk 'NR==1 {print $3}' "$WORK/sim.out")
    read -r secs mb < <(measure env -u REQUESTS_CA_BUNDLE -u CURL_CA_BUNDLE .venv-sdk/bin/python bench/sdk_list_users.py \
        "$SIM" "$(field tenant-id)" "$(field client-id)" "$(field client-secret)")
    listed=$(cat "$WORK/last.out")
    echo
    row "msgraph-sdk (Python): list $listed users" "$secs" "$mb" "$(echo "$listed / $secs" | bc)" "-" "-"
    kill "$SIM_PID" 2>/dev/null || true
fi

if [ "${BENCH_MILLION:-0}" = 1 ]; then
    start_sim "users=1000000,groups=$GROUPS,nesting=3,guests=5,disabled=5,seed=1"
    echo "graph-sim generated and loaded the 1,000,000-user tenant in ${SIM_START} s."
    run_full "SQLite 1M" 1000000
    kill "$SIM_PID" 2>/dev/null || true
fi
