#!/usr/bin/env bash
# Fuzzes the REST API from its own OpenAPI document with schemathesis: graph-sim and
# `safegpt serve` on 127.0.0.1, an administrator's session (cookie + X-CSRF-Token; a session
# cannot be revoked through the API, unlike the tokens the fuzzer may revoke).
#
# Checks: every schemathesis check except positive_data_acceptance, because some rules span
# several fields (custom endpoints need both URLs, http only for localhost, a group id must
# exist in Entra) and cannot be written in the schema: those answers are a documented 422.
# No 5xx, answers that match the schema and status codes, and `ignored_auth`: no route
# answers without the session.
#
# usage: tests/fuzz/run.sh BIN_DIR VENV   (BIN_DIR holds safegpt and graph-sim)
# With SAFEGPT_DATABASE_URL set (e.g. to a PostgreSQL database) the server runs on that database.
set -euo pipefail
BIN=$(cd "$1" && pwd)
VENV=$2
WORK=$(mktemp -d)
cleanup() { kill "${SIM_PID:-}" "${SERVE_PID:-}" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
export SAFEGPT_DATA_DIR="$WORK/data"

"$BIN/graph-sim" --listen 127.0.0.1:0 --generate users=120,groups=6,seed=9 > "$WORK/sim.out" 2>/dev/null &
SIM_PID=$!
for _ in $(seq 100); do [ -s "$WORK/sim.out" ] && grep -q client-secret "$WORK/sim.out" && break; sleep 0.1; done
SIM=$(awk 'NR==1 {print $3}' "$WORK/sim.out")
field() { awk -v k="$1" '$1==k {print $2}' "$WORK/sim.out"; }
printf %s "$(field client-secret)" | "$BIN/safegpt" azure configure --active true --tenant-id "$(field tenant-id)" \
    --client-id "$(field client-id)" --client-secret-stdin --login-url "$SIM" --graph-url "$SIM" >/dev/null
printf 'fuzzing password\n' | "$BIN/safegpt" admin create --email fuzz@example.org --password-stdin >/dev/null

"$BIN/safegpt" serve --listen 127.0.0.1:0 > "$WORK/serve.out" 2> "$WORK/serve.err" &
SERVE_PID=$!
for _ in $(seq 100); do [ -s "$WORK/serve.out" ] && break; sleep 0.1; done
BASE=$(awk 'NR==1 {print $3}' "$WORK/serve.out")

curl -sf -c "$WORK/jar" -o /dev/null -d 'email=fuzz@example.org&password=fuzzing password&next=/' "$BASE/login"
SESSION=$(awk '$6=="safegpt_session" {print $7}' "$WORK/jar")
CSRF=$(curl -sf -b "$WORK/jar" "$BASE/users" | grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//')
[ -n "$SESSION" ] && [ -n "$CSRF" ] || { echo "could not log in for fuzzing" >&2; exit 1; }

"$VENV/bin/schemathesis" run "$BASE/api/v1/openapi.json" \
    -H "Cookie: safegpt_session=$SESSION" -H "X-CSRF-Token: $CSRF" \
    --checks all --exclude-checks positive_data_acceptance \
    --max-examples 40 --workers 1 --seed 20261126 --no-color
if grep -q '"level":"ERROR"\|ERROR' "$WORK/serve.err"; then
    echo "the server logged errors while fuzzed:" >&2
    grep 'ERROR' "$WORK/serve.err" | head -20 >&2
    exit 1
fi
