#!/usr/bin/env bash
# Many organisations on one deployment: ORGS organisations of USERS users each (plus one of
# BENCH_BIG_USERS), each synced from its own tenant of one graph-sim, on one PostgreSQL
# database, scheduled every 15 minutes by two `safegpt serve` instances.
#
# Two turns, each started by making every organisation due at once:
#   1. all tenants healthy;
#   2. 10 % of the tenants answer 503 to every Graph request for the whole turn.
# For each: when every (healthy) organisation had its scheduled sync (against the 15-minute
# interval), whether any organisation ran twice, the scheduler's claim turns (ms), the
# database connections in use, and where the failing organisations' next runs went.
#
# usage: BENCH_DATABASE_URL=postgres://USER:PASSWORD@127.0.0.1/EMPTY_DATABASE bench/orgs.sh [ORGS] [USERS]
#        defaults: 1000 200; BENCH_BIG_USERS=100000 (0: no large organisation)
#        needs psql, python3, curl
set -euo pipefail
cd "$(dirname "$0")/.."
ORGS=${1:-1000}
USERS=${2:-200}
BIG=${BENCH_BIG_USERS:-100000}
URL=${BENCH_DATABASE_URL:?set BENCH_DATABASE_URL to an empty PostgreSQL database}
for tool in psql python3 curl; do
    command -v "$tool" >/dev/null || { echo "bench/orgs.sh needs $tool" >&2; exit 2; }
done
cargo build --release --locked --bin safegpt --bin graph-sim >/dev/null 2>&1 ||
    cargo build --release --locked --bin safegpt --bin graph-sim
BIN=$PWD/target/release
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

sim() { # name spec-flag spec
    "$BIN/graph-sim" --listen 127.0.0.1:0 "$2" "$3" --write-tenant "$WORK/$1.json" > "$WORK/$1.out" 2>/dev/null &
    PIDS+=($!)
    for _ in $(seq 6000); do grep -q client-secret "$WORK/$1.out" 2>/dev/null && break; sleep 0.05; done
    awk 'NR==1 {print $3}' "$WORK/$1.out"
}
SMALL=$(sim small --generate-tenants "$ORGS,users=$USERS,groups=5,seed=1")
BIG_SIM=""
if [ "$BIG" -gt 0 ]; then BIG_SIM=$(sim big --generate "users=$BIG,groups=50,nesting=3,seed=424242"); fi

export SAFEGPT_DATABASE_URL=$URL SAFEGPT_DATA_DIR=$WORK/data
export BIN WORK SMALL BIG_SIM URL ORGS
python3 bench/orgs.py setup

for instance in a b; do
    SAFEGPT_LOG="safegpt_app::schedule=debug,warn" SAFEGPT_LOG_FORMAT=json \
        "$BIN/safegpt" serve --listen 127.0.0.1:0 > "$WORK/serve-$instance.out" 2> "$WORK/serve-$instance.log" &
    PIDS+=($!)
done
python3 bench/orgs.py turns
