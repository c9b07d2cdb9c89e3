#!/usr/bin/env bash
# The CLI walkthrough: builds safegpt and graph-sim, serves a generated tenant (a few hundred users in
# nested groups, with guests and disabled accounts) on 127.0.0.1, configures Azure User Sync
# against it, tests the connection, previews and runs a sync, and lists the directory.
# Everything stays on this machine; the data lives in ./safegpt-demo (removed first).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --bin safegpt --bin graph-sim
BIN=target/release
DATA=./safegpt-demo
rm -rf "$DATA" && mkdir -p "$DATA"
export SAFEGPT_DATA_DIR="$DATA"

"$BIN/graph-sim" --listen 127.0.0.1:0 --generate users=400,groups=12,nesting=3,guests=8,disabled=5,seed=42 \
    > "$DATA/graph-sim.out" &
SIM_PID=$!
trap 'kill $SIM_PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$DATA/graph-sim.out" ] && break; sleep 0.1; done
URL=$(awk 'NR==1 {print $3}' "$DATA/graph-sim.out")
TENANT=$(awk '$1=="tenant-id" {print $2}' "$DATA/graph-sim.out")
CLIENT=$(awk '$1=="client-id" {print $2}' "$DATA/graph-sim.out")
SECRET=$(awk '$1=="client-secret" {print $2}' "$DATA/graph-sim.out")
# The group with the most members, counting nested groups.
GROUP=$(curl -s "$URL/_sim/tenant" | python3 -c '
import json, sys
t = json.load(sys.stdin)
groups = {g["id"]: g["members"] for g in t["groups"]}
def members(g, seen):
    out = set()
    for m in groups[g]:
        if m in groups and m not in seen:
            seen.add(m); out |= members(m, seen)
        else:
            out.add(m)
    return out
print(max(groups, key=lambda g: len(members(g, {g}))))')
echo "graph-sim serves tenant $TENANT at $URL"

printf '%s\n' "$SECRET" | "$BIN/safegpt" azure configure --active true --tenant-id "$TENANT" --client-id "$CLIENT" \
    --client-secret-stdin --group-id "$GROUP" --auto-disable true --auto-remove true --remove-after-days 14 \
    --login-url "$URL" --graph-url "$URL"
"$BIN/safegpt" azure show
echo; "$BIN/safegpt" azure test
echo; "$BIN/safegpt" sync --dry-run | head -n 8
echo; "$BIN/safegpt" sync
echo; "$BIN/safegpt" users list | tail -n 6
echo
if [ -t 0 ]; then
    echo "Try more in another shell: SAFEGPT_DATA_DIR=$DATA $BIN/safegpt runs list"
    echo "graph-sim keeps serving $URL until you press Ctrl-C."
    wait $SIM_PID
fi
