#!/usr/bin/env bash
# End-to-end benchmarks on this machine: release build, graph-sim in a separate process over
# loopback HTTP, `safegpt sync` timed with its peak RSS, on SQLite (and on PostgreSQL when
# BENCH_DATABASE_URL names an empty database).
#
# The directory is scoped to the tenant's top-level groups (every group below them nested up
# to 3 deep), so that removals from groups matter. Rows: a first full sync, a full read
# again with nothing changed, an incremental (delta) run with nothing changed, and an
# incremental run after 100 changes made through graph-sim's control API (bench/tenant.py).
#
# usage: bench/run.sh [USERS] [GROUPS]      defaults: 100000 50 (nesting 3)
#        BENCH_MILLION=1 bench/run.sh       adds the 1,000,000-user full sync
#        BENCH_SDK=0 bench/run.sh           skips the msgraph-sdk listing (about 5 minutes for 100,000 users)
#        BENCH_LATENCY_MS=0 bench/run.sh    skips the first full sync at 100 ms per request
#        BENCH_ANSWERS=0 bench/run.sh       skips timing the API and page answers about the first run
#        BENCH_MANY_GROUPS=0 bench/run.sh   skips the tenant of 20,000 groups and 500,000 memberships
#                                           (on PostgreSQL too when BENCH_MANY_GROUPS_DATABASE_URL names
#                                           a second empty database)
#        BENCH_LATENCY_DATABASE_URL=…, BENCH_MILLION_DATABASE_URL=…  (each another empty database): the
#                                           100 ms row and the 1,000,000-user rows on PostgreSQL too
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-100000}
GROUP_COUNT=${2:-50}  # not GROUPS: bash ignores assignments to its GROUPS array
cargo build --release --locked --bin safegpt --bin graph-sim >/dev/null 2>&1 ||
    cargo build --release --locked --bin safegpt --bin graph-sim
BIN=$PWD/target/release
WORK=$(mktemp -d)
cleanup() { kill "${SIM_PID:-}" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

now() { date +%s.%N; }
# Arithmetic on decimals without bc (not installed everywhere): calc FORMAT EXPRESSION.
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
for tool in curl python3 awk; do
    command -v "$tool" >/dev/null || { echo "bench/run.sh needs $tool (apt-get install $tool)" >&2; exit 2; }
done

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
    echo "$(calc %.3f "$end - $start") $((peak / 1024))"
}

start_sim() {
    local spec=$1
    local t0 t1
    t0=$(now)
    "$BIN/graph-sim" --listen 127.0.0.1:0 --generate "$spec" > "$WORK/sim.out" 2>/dev/null &
    SIM_PID=$!
    for _ in $(seq 6000); do grep -q client-secret "$WORK/sim.out" 2>/dev/null && break; sleep 0.01; done
    t1=$(now)
    SIM_START=$(calc %.2f "$t1 - $t0")
    SIM=$(awk 'NR==1 {print $3}' "$WORK/sim.out")
}

field() { awk -v k="$1" '$1==k {print $2}' "$WORK/sim.out"; }

configure() {
    local data=$1 groups=()
    for g in $(python3 bench/tenant.py roots "$SIM"); do groups+=(--group-id "$g"); done
    printf %s "$(field client-secret)" | SAFEGPT_DATA_DIR="$data" "$BIN/safegpt" azure configure --active true \
        --tenant-id "$(field tenant-id)" --client-id "$(field client-id)" --client-secret-stdin \
        --login-url "$SIM" --graph-url "$SIM" --threshold-count 10000000 --auto-disable true "${groups[@]}" >/dev/null
}

stats() { curl -s "$SIM/_sim/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(sum(s["requests"].values()) if isinstance(s["requests"], dict) else sum(r["count"] for r in s["requests"]), s.get("bytesSent", s.get("bytes_sent", 0)))'; }

row() { printf '| %-62s | %8s | %8s | %10s | %8s | %10s |\n' "$@"; }

echo "## safegpt sync benchmarks — $(nproc) cores, $(date -u +%Y-%m-%d), release build"
echo
row "scenario" "wall s" "peak MB" "users/s" "requests" "MB read"
row "---" "---:" "---:" "---:" "---:" "---:"

# One timed `safegpt sync` and its row; USERS_DONE = users it read, for users/s.
timed_sync() {
    local label=$1 users=$2 data=$3
    shift 3
    curl -s -X DELETE "$SIM/_sim/stats" >/dev/null
    read -r secs mb < <(measure env SAFEGPT_DATA_DIR="$data" "$BIN/safegpt" sync --json "$@")
    read -r reqs bytes < <(stats)
    local mode rate="-"
    mode=$(python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); print(o.get("read_mode"), o["status"])' "$WORK/last.out")
    [ "$users" != "-" ] && rate=$(calc %d "$users / $secs")
    row "$label [$mode]" "$secs" "$mb" "$rate" "$reqs" "$(calc %.2f "$bytes / 1048576")"
}

run_full() {
    local label=$1 users=$2 backend_url=${3:-}
    local data="$WORK/data-$label"
    mkdir -p "$data"
    [ -n "$backend_url" ] && export SAFEGPT_DATABASE_URL="$backend_url" || unset SAFEGPT_DATABASE_URL
    configure "$data"
    timed_sync "$label: first full sync ($users users)" "$users" "$data"
    disk_used "$label" "$users" "$data" "$backend_url"
    if [ "${BENCH_ANSWERS:-1}" = 1 ]; then run_answers "$label" "$data"; fi
    timed_sync "$label: full read again, nothing changed" "$users" "$data" --full
    [ "${BENCH_INCREMENTAL:-1}" = 1 ] || return 0
    timed_sync "$label: incremental, nothing changed" "-" "$data"
    local changed
    changed=$(python3 bench/tenant.py change "$SIM" 100)
    timed_sync "$label: incremental after $changed changes" "-" "$data"
}

# What the first sync left on disk: the data directory (SQLite) or the database's size.
disk_used() {
    local label=$1 users=$2 data=$3 url=$4 bytes
    if [ -z "$url" ]; then
        bytes=$(du -sb "$data" | awk '{print $1}')
    elif command -v psql >/dev/null; then
        bytes=$(psql "$url" -tAc 'SELECT pg_database_size(current_database())')
    else
        return 0
    fi
    echo
    echo "$label: after the first sync the data takes $(calc %.1f "$bytes / 1048576") MB," \
        "$(calc %d "$bytes / $users") bytes per user of the tenant."
    echo
}

# The answers about the first sync's run (one change per user created), from `safegpt serve`
# on the same data: each timed by curl (the best of six, the first warming up), with its size.
run_answers() {
    local label=$1 data=$2
    local token cookie run_id base
    token=$(SAFEGPT_DATA_DIR="$data" "$BIN/safegpt" tokens create --name bench --scope read)
    printf 'bench-password-0123' | SAFEGPT_DATA_DIR="$data" "$BIN/safegpt" admin create --email bench@example.org \
        --password-stdin >/dev/null
    SAFEGPT_DATA_DIR="$data" "$BIN/safegpt" serve --listen 127.0.0.1:0 > "$WORK/serve.out" 2>/dev/null &
    local serve_pid=$!
    for _ in $(seq 500); do grep -q listening "$WORK/serve.out" 2>/dev/null && break; sleep 0.02; done
    base=$(awk '/listening/ {print $3}' "$WORK/serve.out")
    cookie=$(curl -s -o /dev/null -D - -d 'email=bench%40example.org&password=bench-password-0123&next=/runs' \
        "$base/login" | awk -F'[ ;]' 'tolower($1)=="set-cookie:" {print $2}')
    local changes
    read -r run_id changes < <(curl -s -H "authorization: Bearer $token" "$base/api/v1/runs?limit=1" |
        python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; print(r["id"], sum(b["count"] for b in r["breakdown"]))')
    local deep=$((changes - 150))
    echo
    echo "$label: answers about that run ($changes changes) from \`safegpt serve\` on the same data, best of six:"
    echo
    printf '| %-58s | %8s | %8s |\n' "answer" "ms" "KB" "---" "---:" "---:"
    answer() {
        local what=$1 path=$2 header=$3 best=999 size t code
        for _ in 1 2 3 4 5 6; do
            read -r t size code < <(curl -s -o /dev/null -w '%{time_total} %{size_download} %{http_code}\n' \
                -H "$header" "$base$path")
            [ "$code" = 200 ] || { echo "$what: HTTP $code for $path" >&2; return 1; }
            best=$(calc %.4f "($t < $best) ? $t : $best")
        done
        printf '| %-58s | %8s | %8s |\n' "$what" "$(calc %.1f "$best * 1000")" "$(calc %.1f "$size / 1024")"
    }
    answer "GET /api/v1/runs/{id} (counts + first 100 changes)" "/api/v1/runs/$run_id" "authorization: Bearer $token"
    answer "GET …/changes?limit=100 deep in the run" "/api/v1/runs/$run_id/changes?limit=100&cursor=$deep" \
        "authorization: Bearer $token"
    answer "GET …/changes?limit=1000 deep in the run" "/api/v1/runs/$run_id/changes?limit=1000&cursor=$((deep - 900))" \
        "authorization: Bearer $token"
    local email
    email=$(curl -s -H "authorization: Bearer $token" "$base/api/v1/runs/$run_id/changes?limit=1&cursor=$deep" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["changes"][0]["email"])')
    answer "GET …/changes?q=(one address, near the end)" "/api/v1/runs/$run_id/changes?q=$email" \
        "authorization: Bearer $token"
    answer "run page /runs/{id} (summary + 100 changes)" "/runs/$run_id" "cookie: $cookie"
    answer "run page, filtered, deep" "/runs/$run_id?action=create&cursor=$deep" "cookie: $cookie"
    kill "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
    echo
    row "scenario" "wall s" "peak MB" "users/s" "requests" "MB read"
    row "---" "---:" "---:" "---:" "---:" "---:"
}

# Requests by route kind from graph-sim's stats: "users groups other".
route_counts() {
    curl -s "$SIM/_sim/stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)
users = sum(r["count"] for r in s["requests"] if "/users/delta" in r["route"])
groups = sum(r["count"] for r in s["requests"] if "/groups/delta" in r["route"])
print(users, groups, s["total"] - users - groups)'
}

# A first full sync with LATENCY_MS added to every request: the wall time against the network
# floor, the longer delta round's requests times the latency (the rounds run at once).
run_latency() {
    local latency_ms=$1 label=$2 backend_url=${3:-}
    local data="$WORK/data-latency-$label"
    mkdir -p "$data"
    [ -n "$backend_url" ] && export SAFEGPT_DATABASE_URL="$backend_url" || unset SAFEGPT_DATABASE_URL
    configure "$data"
    curl -s -X PUT "$SIM/_sim/faults" -H 'content-type: application/json' -d "{\"latencyMs\": $latency_ms}" >/dev/null
    curl -s -X DELETE "$SIM/_sim/stats" >/dev/null
    read -r secs mb < <(measure env SAFEGPT_DATA_DIR="$data" "$BIN/safegpt" sync --json)
    read -r users groups other < <(route_counts)
    curl -s -X PUT "$SIM/_sim/faults" -H 'content-type: application/json' -d '{}' >/dev/null
    local longer=$((users > groups ? users : groups))
    local floor
    floor=$(calc %.2f "$longer * $latency_ms / 1000")
    row "$label: first full sync at ${latency_ms} ms per request" "$secs" "$mb" "-" "$((users + groups + other))" "-"
    echo
    echo "$label at ${latency_ms} ms: users/delta $users requests, groups/delta $groups, other $other;" \
        "network floor ${floor} s (the longer round), wall ${secs} s = $(calc %.2f "$secs / $floor") x the floor."
}

start_sim "users=$USERS,groups=$GROUP_COUNT,nesting=3,guests=5,disabled=5,seed=1"
echo
run_full "SQLite" "$USERS"
if [ "${BENCH_LATENCY_MS:-100}" != 0 ]; then
    run_latency "${BENCH_LATENCY_MS:-100}" SQLite
    if [ -n "${BENCH_LATENCY_DATABASE_URL:-}" ]; then
        run_latency "${BENCH_LATENCY_MS:-100}" PostgreSQL "$BENCH_LATENCY_DATABASE_URL"
    fi
    unset SAFEGPT_DATABASE_URL
fi
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
    run_full "PostgreSQL" "$USERS" "$BENCH_DATABASE_URL"
fi
unset SAFEGPT_DATABASE_URL

kill "$SIM_PID" 2>/dev/null || true
echo
echo "graph-sim generated and loaded the $USERS-user tenant in ${SIM_START} s."

# Many groups: the same users, each a direct member of 5 of 20,000 groups nested 3 deep; the
# directory scoped to every top-level group (a third of them), so the groups round and the
# scope's coverage carry 500,000 memberships.
if [ "${BENCH_MANY_GROUPS:-1}" = 1 ]; then
    start_sim "users=$USERS,groups=20000,nesting=3,memberships=500000,guests=5,disabled=5,seed=1"
    echo
    echo "graph-sim generated and loaded the tenant of 20,000 groups and 500,000 memberships in ${SIM_START} s."
    echo
    row "scenario" "wall s" "peak MB" "users/s" "requests" "MB read"
    row "---" "---:" "---:" "---:" "---:" "---:"
    BENCH_INCREMENTAL=0 BENCH_ANSWERS=0 run_full "SQLite 20k groups" "$USERS"
    if [ -n "${BENCH_MANY_GROUPS_DATABASE_URL:-}" ]; then
        BENCH_INCREMENTAL=0 BENCH_ANSWERS=0 run_full "PostgreSQL 20k groups" "$USERS" "$BENCH_MANY_GROUPS_DATABASE_URL"
    fi
    unset SAFEGPT_DATABASE_URL
    kill "$SIM_PID" 2>/dev/null || true
fi

# The same listing with Microsoft's Python SDK (the code a team would otherwise write),
# against the same tenant, graph-sim advertising the real Microsoft hosts.
if [ "${BENCH_SDK:-1}" = 1 ] && [ -x .venv-sdk/bin/python ]; then
    "$BIN/graph-sim" --listen 127.0.0.1:0 --generate "users=$USERS,groups=$GROUP_COUNT,nesting=3,guests=5,disabled=5,seed=1" \
        --public-login-url https://login.microsoftonline.com --public-graph-url https://graph.microsoft.com \
        > "$WORK/sim.out" 2>/dev/null &
    SIM_PID=$!
    for _ in $(seq 6000); do grep -q client-secret "$WORK/sim.out" 2>/dev/null && break; sleep 0.01; done
    SIM=$(awk 'NR==1 {print $3}' "$WORK/sim.out")
    read -r secs mb < <(measure env -u REQUESTS_CA_BUNDLE -u CURL_CA_BUNDLE .venv-sdk/bin/python bench/sdk_list_users.py \
        "$SIM" "$(field tenant-id)" "$(field client-id)" "$(field client-secret)")
    listed=$(cat "$WORK/last.out")
    echo
    row "msgraph-sdk (Python): list $listed users" "$secs" "$mb" "$(calc %d "$listed / $secs")" "-" "-"
    kill "$SIM_PID" 2>/dev/null || true
fi

if [ "${BENCH_MILLION:-0}" = 1 ]; then
    start_sim "users=1000000,groups=$GROUP_COUNT,nesting=3,guests=5,disabled=5,seed=1"
    echo "graph-sim generated and loaded the 1,000,000-user tenant in ${SIM_START} s."
    BENCH_INCREMENTAL=0 run_full "SQLite 1M" 1000000
    if [ -n "${BENCH_MILLION_DATABASE_URL:-}" ]; then
        BENCH_INCREMENTAL=0 run_full "PostgreSQL 1M" 1000000 "$BENCH_MILLION_DATABASE_URL"
    fi
    unset SAFEGPT_DATABASE_URL
    kill "$SIM_PID" 2>/dev/null || true
fi
