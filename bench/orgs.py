"""The many-organisations benchmark (bench/orgs.sh runs it; see there).

setup: an organisation per tenant of graph-sim (t0000 …), configured against its tenant with
       a 15-minute interval, and `big` for the large tenant, through the `safegpt` CLI.
turns: two scheduled turns with every organisation due at once (healthy; then 10 % of the
       tenants answering 503), measured from the database and the instances' logs."""
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

BIN, WORK, URL = os.environ["BIN"], os.environ["WORK"], os.environ["URL"]
SMALL, BIG_SIM = os.environ["SMALL"], os.environ.get("BIG_SIM", "")
INTERVAL_S = 15 * 60


def safegpt(*args, stdin=None):
    subprocess.run([f"{BIN}/safegpt", *args], input=stdin, text=True, check=True, capture_output=True)


def psql(sql):
    out = subprocess.run(["psql", URL, "-tAF", "\t", "-c", sql], text=True, check=True, capture_output=True)
    return [line.split("\t") for line in out.stdout.splitlines() if line]


def tenants(name):
    with open(f"{WORK}/{name}.json") as f:
        data = json.load(f)
    return data["tenants"] if "tenants" in data else [data]


def configure(slug, name, sim, tenant):
    app = tenant["apps"][0]
    safegpt("orgs", "create", "--slug", slug, "--name", name)
    safegpt("--org", slug, "azure", "configure", "--active", "true", "--tenant-id", tenant["tenantId"],
            "--client-id", app["clientId"], "--client-secret-stdin", "--login-url", sim, "--graph-url", sim,
            "--interval", "15m", "--threshold-count", "10000000", stdin=app["secrets"][0]["value"])


def setup():
    started = time.time()
    jobs = [(f"t{i:04d}", f"Tenant {i}", SMALL, t) for i, t in enumerate(tenants("small"))]
    if BIG_SIM:
        jobs.append(("big", "Large organisation", BIG_SIM, tenants("big")[0]))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda job: configure(*job), jobs))
    print(f"Setup: {len(jobs)} organisations created and configured through the CLI in "
          f"{time.time() - started:.0f} s.\n")


def now_ts():
    return psql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")[0][0]


def wait_planned(expected):
    for _ in range(600):
        if int(psql("SELECT COUNT(*) FROM sync_schedule")[0][0]) >= expected:
            return
        time.sleep(1)
    sys.exit("the scheduler never planned every organisation")


def log_turns(since):
    """Claim turns of both instances after `since` (epoch s): their durations in ms."""
    took = []
    for instance in "ab":
        with open(f"{WORK}/serve-{instance}.log") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                fields = entry.get("fields", {})
                if fields.get("message") != "scheduler turn":
                    continue
                at = time.mktime(time.strptime(entry["timestamp"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
                if at >= since:
                    took.append((int(fields["took_ms"]), int(fields["claimed"]), int(fields["planned"])))
    return took


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else 0


def fault(tenant_id, on):
    rules = [{"path": "/v1.0", "status": 503, "count": 10**9}] if on else []
    req = urllib.request.Request(f"{SMALL}/_sim/tenants/{tenant_id}/faults", method="PUT",
                                 data=json.dumps({"rules": rules}).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()


def turn(label, failing):
    orgs = int(psql("SELECT COUNT(*) FROM orgs WHERE id <> 'default'")[0][0])
    healthy = orgs - len(failing)
    t0, wall0 = now_ts(), time.time()
    psql("UPDATE sync_schedule SET next_run_at = '2000-01-01T00:00:00Z', failures = 0 WHERE org_id <> 'default'")
    connections, done = [], 0
    while time.time() - wall0 < INTERVAL_S:
        connections.append(int(psql("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()")[0][0]) - 1)
        done = int(psql(f"SELECT COUNT(DISTINCT org_id) FROM sync_runs WHERE trigger = 'schedule' "
                        f"AND started_at >= '{t0}' AND status <> 'running'")[0][0])
        if done >= orgs:
            break
        time.sleep(1)
    elapsed = time.time() - wall0
    rows = psql(f"SELECT org_id, status, started_at, finished_at FROM sync_runs WHERE trigger = 'schedule' "
                f"AND started_at >= '{t0}'")
    per_org = {}
    for org, status, _, finished in rows:
        per_org.setdefault(org, []).append((status, finished))
    twice = sum(1 for runs in per_org.values() if len(runs) > 1)
    start = time.mktime(time.strptime(t0[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone

    def done_after(finished):
        return time.mktime(time.strptime(finished[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone - start

    ok = [done_after(f) for org, runs in per_org.items() for s, f in runs
          if s == "succeeded" and f and org not in failing and org != "big"]
    big = [done_after(f) for s, f in per_org.get("big", []) if f]
    failed = sum(1 for org in failing for s, _ in per_org.get(org, []) if s == "failed")
    turns = log_turns(wall0 - 1)
    claims = [t for t, c, p in turns if p == 0]
    print(f"### {label}\n")
    print("| measure | value |\n|---|---:|")
    print(f"| organisations with a scheduled run (of {orgs}) | {len(per_org)} |")
    print(f"| healthy small organisations synced (of {healthy - (1 if BIG_SIM else 0)}) | {len(ok)} |")
    print(f"| … the last one done after (s; interval {INTERVAL_S}) | {max(ok, default=0):.0f} |")
    print(f"| … median / 95th percentile done after (s) | {statistics.median(ok) if ok else 0:.0f} / {pct(ok, 0.95):.0f} |")
    if BIG_SIM:
        print(f"| the large organisation ({os.environ.get('BENCH_BIG_USERS', '100000')} users) done after (s) | "
              f"{max(big, default=float('nan')):.0f} |")
    print(f"| organisations run twice in the turn | {twice} |")
    if failing:
        print(f"| failing organisations' runs failed (of {len(failing)}) | {failed} |")
        nxt = psql("SELECT MIN(next_run_at), MAX(next_run_at), MIN(failures) FROM sync_schedule WHERE org_id IN ("
                   + ",".join(f"'{o}'" for o in failing) + ")")[0]
        print(f"| their next runs (backed off from the turn's start) | {nxt[0][11:19]} – {nxt[1][11:19]} UTC, "
              f"failures ≥ {nxt[2]} |")
    print(f"| whole turn, wall (s) | {elapsed:.0f} |")
    print(f"| scheduler claim turns, both instances: count, median / p95 / max ms | {len(claims)}, "
          f"{statistics.median(claims) if claims else 0:.0f} / {pct(claims, 0.95)} / {max(claims, default=0)} |")
    print(f"| database connections in use: median / max | {statistics.median(connections):.0f} / {max(connections)} |")
    print()


def run_turns():
    orgs = int(psql("SELECT COUNT(*) FROM orgs WHERE id <> 'default'")[0][0])
    wait_planned(orgs)
    print(f"## Many organisations — {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, release build, "
          f"two `safegpt serve` on one PostgreSQL, SAFEGPT_MAX_CONCURRENT_SYNCS=4 each\n")
    turn("Turn 1: every tenant healthy (first syncs)", set())
    turn("Turn 2: every tenant healthy (incremental syncs)", set())
    small = tenants("small")
    failing = {f"t{i:04d}" for i in range(0, len(small), 10)}
    for i in range(0, len(small), 10):
        fault(small[i]["tenantId"], True)
    turn("Turn 3: 10 % of the tenants answer 503 to every Graph request", failing)


if __name__ == "__main__":
    {"setup": setup, "turns": run_turns}[sys.argv[1]]()
